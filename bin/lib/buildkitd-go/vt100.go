// Package vt100 stands in for github.com/tonistiigi/vt100, which Debian does not package. buildctl uses it only
// for its interactive (tty) progress display; this keeps the last lines of text, without escape handling.
// bin/buildkit uses buildctl with --progress=plain.
package vt100

import "strings"

type VT100 struct {
	Height, Width int
	Content       [][]rune
	lines         []string
}

func NewVT100(y, x int) *VT100 {
	v := &VT100{Height: y, Width: x}
	v.render()
	return v
}

func (v *VT100) Resize(y, x int) {
	v.Height, v.Width = y, x
	v.render()
}

func (v *VT100) Write(b []byte) (int, error) {
	v.lines = append(v.lines, strings.Split(strings.TrimRight(string(b), "\n"), "\n")...)
	if len(v.lines) > v.Height {
		v.lines = v.lines[len(v.lines)-v.Height:]
	}
	v.render()
	return len(b), nil
}

func (v *VT100) UsedHeight() int { return len(v.lines) }

func (v *VT100) render() {
	v.Content = make([][]rune, v.Height)
	for i := range v.Content {
		row := []rune(strings.Repeat(" ", max(v.Width, 0)))
		if i < len(v.lines) {
			copy(row, []rune(v.lines[i]))
		}
		v.Content[i] = row
	}
}

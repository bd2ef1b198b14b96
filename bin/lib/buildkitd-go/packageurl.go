// Package packageurl stands in for github.com/package-url/packageurl-go, which Debian does not package: the
// part of its API that BuildKit uses (SBOM attestations and image references), after the purl specification.
package packageurl

import (
	"errors"
	"net/url"
	"sort"
	"strings"
)

const (
	TypeDocker = "docker"
	TypeOCI    = "oci"
)

type Qualifier struct {
	Key   string
	Value string
}

type Qualifiers []Qualifier

type PackageURL struct {
	Type       string
	Namespace  string
	Name       string
	Version    string
	Qualifiers Qualifiers
	Subpath    string
}

func NewPackageURL(purlType, namespace, name, version string, qualifiers Qualifiers, subpath string) *PackageURL {
	return &PackageURL{Type: purlType, Namespace: namespace, Name: name, Version: version, Qualifiers: qualifiers, Subpath: subpath}
}

func esc(s string) string { return strings.ReplaceAll(url.PathEscape(s), "%2F", "/") }

func (p *PackageURL) ToString() string {
	s := "pkg:" + p.Type + "/"
	if p.Namespace != "" {
		s += esc(p.Namespace) + "/"
	}
	s += url.PathEscape(p.Name)
	if p.Version != "" {
		s += "@" + url.PathEscape(p.Version)
	}
	if len(p.Qualifiers) > 0 {
		q := append(Qualifiers(nil), p.Qualifiers...)
		sort.Slice(q, func(i, j int) bool { return q[i].Key < q[j].Key })
		parts := make([]string, 0, len(q))
		for _, kv := range q {
			parts = append(parts, kv.Key+"="+url.QueryEscape(kv.Value))
		}
		s += "?" + strings.Join(parts, "&")
	}
	if p.Subpath != "" {
		s += "#" + p.Subpath
	}
	return s
}

func (p PackageURL) String() string { return p.ToString() }

func FromString(purl string) (PackageURL, error) {
	if !strings.HasPrefix(purl, "pkg:") {
		return PackageURL{}, errors.New("purl scheme is not \"pkg\"")
	}
	rest := strings.TrimPrefix(purl, "pkg:")
	var p PackageURL
	if i := strings.Index(rest, "#"); i >= 0 {
		p.Subpath, rest = rest[i+1:], rest[:i]
	}
	if i := strings.Index(rest, "?"); i >= 0 {
		for _, kv := range strings.Split(rest[i+1:], "&") {
			k, v, _ := strings.Cut(kv, "=")
			uv, err := url.QueryUnescape(v)
			if err != nil {
				return PackageURL{}, err
			}
			p.Qualifiers = append(p.Qualifiers, Qualifier{Key: strings.ToLower(k), Value: uv})
		}
		rest = rest[:i]
	}
	typ, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return PackageURL{}, errors.New("purl is missing type or name")
	}
	p.Type = strings.ToLower(typ)
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		v, err := url.PathUnescape(rest[i+1:])
		if err != nil {
			return PackageURL{}, err
		}
		p.Version, rest = v, rest[:i]
	}
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		ns, err := url.PathUnescape(rest[:i])
		if err != nil {
			return PackageURL{}, err
		}
		p.Namespace, rest = ns, rest[i+1:]
	}
	n, err := url.PathUnescape(rest)
	if err != nil {
		return PackageURL{}, err
	}
	p.Name = n
	return p, nil
}

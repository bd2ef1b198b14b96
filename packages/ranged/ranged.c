#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints "<flavour>: <taste>" for every /usr/share/ranged/<flavour>.txt, sorted. */
static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(void) {
    const char *dir = "/usr/share/ranged";
    DIR *d = opendir(dir);
    char *names[64];
    size_t n = 0;
    struct dirent *e;
    if (!d) return 0;
    while ((e = readdir(d)) && n < 64) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".txt") == 0) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp);
    for (size_t i = 0; i < n; i++) {
        char path[512], taste[64] = "";
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "r");
        if (f) {
            if (fgets(taste, sizeof taste, f)) taste[strcspn(taste, "\n")] = 0;
            fclose(f);
        }
        names[i][strlen(names[i]) - 4] = 0;
        printf("%s: %s\n", names[i], taste);
        free(names[i]);
    }
    return 0;
}

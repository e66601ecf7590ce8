/* Build tool: turns the web pages novad serves (web/...) into a C array of
 * struct asset (core/assets.h), so an installed novad never depends on
 * where the source tree was. Arguments: the directory the names are
 * relative to, then the files. */
#include <stdio.h>
#include <string.h>

static const char *content_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
		{".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
		{".png", "image/png"},                 {".json", "application/json"},
	};
	const char *dot = strrchr(name, '.');
	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(dot, types[i].ext))
			return types[i].type;
	return "application/octet-stream";
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: embed_files DIR FILE...\n");
		return 2;
	}
	size_t dlen = strlen(argv[1]);
	printf("#include \"core/assets.h\"\n\nconst struct asset assets_builtin[] = {\n");
	for (int i = 2; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		const char *name = argv[i];
		size_t len = 0;
		int c;
		if (!f) {
			perror(argv[i]);
			return 1;
		}
		if (!strncmp(name, argv[1], dlen) && name[dlen] == '/')
			name += dlen + 1;
		printf("\t{\"/%s\", \"%s\", (const unsigned char[]){", name, content_type(name));
		while ((c = fgetc(f)) != EOF) {
			printf("%d,", c);
			if (++len % 32 == 0)
				printf("\n");
		}
		printf("0}, %zu},\n", len);
		fclose(f);
	}
	printf("\t{0, 0, 0, 0}\n};\nconst size_t assets_builtin_count = %d;\n", argc - 2);
	return 0;
}

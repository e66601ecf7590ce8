/* Build tool: turns sql/NNNN_*.sql into a C array of struct db_migration,
 * so novad carries its schema and never depends on the source tree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	printf("#include \"core/db.h\"\n\nconst struct db_migration db_migrations_builtin[] = {\n");
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		const char *base = strrchr(argv[i], '/');
		size_t len = 0;
		int c;
		if (!f) {
			perror(argv[i]);
			return 1;
		}
		base = base ? base + 1 : argv[i];
		printf("\t{\"%s\", (const char[]){", base);
		while ((c = fgetc(f)) != EOF) {
			printf("%d,", c);
			if (++len % 32 == 0)
				printf("\n");
		}
		printf("0}, %zu},\n", len);
		fclose(f);
	}
	printf("\t{0, 0, 0}\n};\nconst size_t db_migrations_builtin_count = %d;\n", argc - 1);
	return 0;
}

/*
 * fuzz_config.c: the config loader on any file content (JSON, the typed
 * key table, bounds, aliases), then printing the effective config.
 */
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char	 path[64];
	static FILE	*devnull;
	struct cfg	 c;
	char		 err[256];
	int		 fd;

	if (path[0] == '\0') {
		snprintf(path, sizeof(path), "/tmp/qrfuzz-cfg.%ld.json",
		    (long)getpid());
		unsetenv("QWENRELAY_CONFIG");
		devnull = fopen("/dev/null", "w");
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		abort();
	if (write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	if (cfg_load(&c, path, err, sizeof(err)) == 0) {
		cfg_print(&c, devnull);
		(void)cfg_alias(&c, "claude-3-5-sonnet");
	} else if (strlen(err) == 0)
		abort();	/* an error always says what */
	cfg_free(&c);
	return 0;
}

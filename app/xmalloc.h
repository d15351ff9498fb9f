/*
 * xmalloc.h: allocation wrappers that abort on failure.
 *
 * A worker that cannot allocate has no useful way to go on; the web server
 * or the serve master restarts it.  Every other file allocates through
 * these, so "out of memory" is handled in exactly one place.
 */
#ifndef QR_XMALLOC_H
#define QR_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

/* Overwrite n bytes in a way the compiler may not remove. */
void	 xwipe(void *, size_t);
/* Wipe a NUL-terminated secret, then free it.  Accepts NULL. */
void	 xfree_secret(char *);
/* Free each string of a NULL-terminated list, then the list.  Accepts NULL. */
void	 xfree_strv(char **);

#endif

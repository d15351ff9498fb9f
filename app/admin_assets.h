/*
 * admin_assets.h: the admin page's files (handlers/admin/), compiled into
 * the binary by app/embed.awk so the app serves them itself: no CDN, no
 * file to deploy beside the binary.
 */
#ifndef QR_ADMIN_ASSETS_H
#define QR_ADMIN_ASSETS_H

#include <stddef.h>

extern const char	admin_index_html[];
extern const size_t	admin_index_html_len;
extern const char	admin_app_js[];
extern const size_t	admin_app_js_len;
extern const char	admin_app_css[];
extern const size_t	admin_app_css_len;

#endif

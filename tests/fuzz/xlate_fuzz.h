/*
 * xlate_fuzz.h: the body shared by fuzz_responses.c and fuzz_messages.c
 * (each defines XLATE_FUZZ_KIND and includes this).  What an edge
 * translator reads from outside:
 *   byte 0 % 3 == 0: the client's request body -> proto->request, and the
 *                    same JSON as a previous turn's history;
 *             == 1: a chat-completions answer -> proto->answer, and as an
 *                    error body -> proto->error;
 *             == 2: the bytes the relay writes (CGI head, then SSE or a
 *                    JSON body) through the edge filter, in pieces whose
 *                    sizes come from byte 1.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "edge.h"
#include "log.h"
#include "req.h"
#include "xlate.h"

static int
null_write(void *ctx, const void *p, size_t n)
{
	(void)ctx;
	(void)p;
	(void)n;
	return 0;
}

static int
null_flush(void *ctx)
{
	(void)ctx;
	return 0;
}

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct xlate_proto	*p = xlate_proto(XLATE_FUZZ_KIND);
	struct sink			 down = { null_write, null_flush, NULL };
	struct xlate_ctx		 x;
	struct edge_filter		*f;
	json_object			*in, *out, *hist;
	char				*s, err[256];
	size_t				 i, step, n;
	int				 status;

	static int	 quiet;

	if (!quiet)
		quiet = log_open("error", "/dev/null") == 0;
	if (size < 2)
		return 0;
	n = size - 2;
	s = malloc(n + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data + 2, n);
	s[n] = '\0';
	memset(&x, 0, sizeof(x));
	x.id = "fuzz_1";
	x.model = "claude-x";
	x.created = 1700000000;
	x.input_estimate = 10;
	switch (data[0] % 3) {
	case 0:
		in = json_tokener_parse(s);
		if (in != NULL) {
			err[0] = '\0';
			out = p->request(in, NULL, err, sizeof(err));
			if (out == NULL && err[0] == '\0')
				abort();	/* a refusal says why */
			json_object_put(out);
			hist = json_object_new_array();
			json_object_array_add(hist, json_object_get(in));
			out = p->request(in, hist, err, sizeof(err));
			json_object_put(out);
			json_object_put(hist);
			json_object_put(in);
		}
		break;
	case 1:
		in = json_tokener_parse(s);
		x.req = in;
		if (in != NULL) {
			out = p->answer(&x, in);
			json_object_put(out);
		}
		status = 400 + data[1] % 200;
		if (p->error != NULL) {	/* NULL: errors pass as they are */
			out = p->error(&status, s, "upstream_error");
			json_object_put(out);
		}
		json_object_put(in);
		break;
	default:
		f = edge_filter_new(p, &x, &down);
		step = 1 + data[1] % 64;
		for (i = 0; i < n; i += step)
			edge_filter_write(f, s + i, n - i < step ? n - i : step);
		edge_filter_flush(f);
		json_object_put(edge_filter_end(f));
		break;
	}
	free(s);
	return 0;
}

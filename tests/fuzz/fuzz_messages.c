/*
 * fuzz_messages.c: the Anthropic Messages translator at the edge
 * (app/xlate_messages.c, app/edge.c): see xlate_fuzz.h.
 */
#define XLATE_FUZZ_KIND	XLATE_MESSAGES
#include "xlate_fuzz.h"

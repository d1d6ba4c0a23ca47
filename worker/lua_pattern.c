/* SPDX-License-Identifier: MIT */
/* Lua patterns, the part Kong's schemas use in `match`: so that shmringd
 * checks a declared `match` itself, as Kong's string.match would. Anchors
 * (^, $), '.', the classes %a %c %d %g %l %p %s %u %w %x (upper case: the
 * complement), %<punctuation>, sets [...] with ranges, classes and ^, and
 * the quantifiers * + - ?. Captures, %b and %f are not taken: the pattern
 * is then reported as one shmringd cannot run. */
#include "schema_layout.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

struct lp {
	const char *s_end, *p_end;
	bool unsupported;
	int depth; /* recursion bound: a pattern is short, a string may not be */
};

static bool class_has(int cl, unsigned char c)
{
	bool r;
	switch (tolower(cl)) {
	case 'a':
		r = isalpha(c);
		break;
	case 'c':
		r = iscntrl(c);
		break;
	case 'd':
		r = isdigit(c);
		break;
	case 'g':
		r = isgraph(c);
		break;
	case 'l':
		r = islower(c);
		break;
	case 'p':
		r = ispunct(c);
		break;
	case 's':
		r = isspace(c);
		break;
	case 'u':
		r = isupper(c);
		break;
	case 'w':
		r = isalnum(c);
		break;
	case 'x':
		r = isxdigit(c);
		break;
	default:
		return cl == c; /* %. %% %- ...: the character itself */
	}
	return isupper(cl) ? !r : r;
}

/* The end of the single-character item at p (a class, a set, a char). */
static const char *item_end(struct lp *m, const char *p)
{
	if (*p == '%') {
		if (p + 1 >= m->p_end) {
			m->unsupported = true;
			return m->p_end;
		}
		return p + 2;
	}
	if (*p == '[') {
		const char *q = p + 1;
		if (q < m->p_end && *q == '^')
			q++;
		do { /* the first ']' of a set is a member */
			if (q >= m->p_end) {
				m->unsupported = true;
				return m->p_end;
			}
			if (*q == '%')
				q++;
			q++;
		} while (q >= m->p_end || *q != ']');
		return q + 1;
	}
	return p + 1;
}

static bool set_has(const char *p, const char *end, unsigned char c)
{
	bool neg = false;
	p++; /* '[' */
	if (*p == '^') {
		neg = true;
		p++;
	}
	for (end--; p < end; p++) { /* end: the closing ']' */
		if (*p == '%' && p + 1 < end) {
			if (class_has((unsigned char)*++p, c))
				return !neg;
		} else if (p + 2 < end && p[1] == '-') {
			if ((unsigned char)p[0] <= c && c <= (unsigned char)p[2])
				return !neg;
			p += 2;
		} else if ((unsigned char)*p == c) {
			return !neg;
		}
	}
	return neg;
}

static bool single(const char *s, const char *p, const char *ep, struct lp *m)
{
	if (s >= m->s_end)
		return false;
	unsigned char c = (unsigned char)*s;
	switch (*p) {
	case '.':
		return true;
	case '%':
		return class_has((unsigned char)p[1], c);
	case '[':
		return set_has(p, ep, c);
	default:
		return (unsigned char)*p == c;
	}
}

/* The end of the match of p at s, or NULL. */
static const char *do_match(struct lp *m, const char *s, const char *p)
{
	if (++m->depth > 200) {
		m->unsupported = true;
		return NULL;
	}
	const char *r = NULL;
	while (p < m->p_end && !m->unsupported) {
		if (*p == '(' || *p == ')' ||
		    (*p == '%' && p + 1 < m->p_end &&
		     (p[1] == 'b' || p[1] == 'f' || isdigit((unsigned char)p[1])))) {
			m->unsupported = true;
			break;
		}
		if (*p == '$' && p + 1 == m->p_end) {
			r = s == m->s_end ? s : NULL;
			goto out;
		}
		const char *ep = item_end(m, p);
		char q = ep < m->p_end ? *ep : '\0';
		if (q == '?') {
			const char *res;
			if (single(s, p, ep, m) && (res = do_match(m, s + 1, ep + 1)))
				r = res;
			else
				r = do_match(m, s, ep + 1);
			goto out;
		}
		if (q == '*' || q == '+') { /* longest first */
			size_t i = 0;
			while (single(s + i, p, ep, m))
				i++;
			for (size_t min = q == '+'; i + 1 > min; i--) {
				if ((r = do_match(m, s + i, ep + 1)))
					goto out;
				if (!i)
					break;
			}
			goto out;
		}
		if (q == '-') { /* shortest first */
			for (;;) {
				if ((r = do_match(m, s, ep + 1)))
					goto out;
				if (!single(s, p, ep, m))
					goto out;
				s++;
			}
		}
		if (!single(s, p, ep, m))
			goto out;
		s++;
		p = ep;
	}
	if (!m->unsupported)
		r = s;
out:
	m->depth--;
	return r;
}

int shmringd__lua_match(const char *pattern, const char *s, size_t n)
{
	struct lp m = {.s_end = s + n, .p_end = pattern + strlen(pattern)};
	const char *p = pattern;
	bool anchored = *p == '^';
	p += anchored;
	const char *at = s;
	do {
		m.depth = 0;
		if (do_match(&m, at, p))
			return 1;
	} while (!m.unsupported && !anchored && at++ < m.s_end);
	return m.unsupported ? -1 : 0;
}

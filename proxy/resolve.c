/*
 * resolve — backend servers given by DNS name. A worker's resolver keeps,
 * for every backend with names, the last good set of addresses of each
 * name and the configuration its pool is given: the backend's servers with
 * every name replaced by one server per address. A lookup whose set
 * differs hands the pool that configuration (pool_reconfigure: kept
 * addresses keep their connections, gone ones drain with QUIT, new ones
 * connect); a failed or empty lookup keeps the set.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include <sluice/log.h>
#include <sluice/resolve.h>

/* A configured resolver (resolver: in the file) answers within this many
 * seconds per try, and is tried this often, before a lookup counts as an
 * error; the system's takes its options from /etc/resolv.conf. */
#define RESOLVE_TRY_TIMEOUT "2"
#define RESOLVE_TRY_ATTEMPTS "2"
#define RESOLVE_DEFAULT_INTERVAL_MS 10000
#define RESOLVE_TEXT_MAX 320
/* Addresses kept of one answer (evdns itself keeps at most 32 of each
 * family): each is a server with workers x connections connections. */
#define RESOLVE_MAX_ADDRS CONFIG_MAX_ADDRS_PER_NAME

struct resolve_backend;
struct resolve_lookup;
struct resolve;

static void resolve_sweep(struct resolve *r, bool all);

/* An evdns_base and how many lookups it has under way. evdns reports a
 * cancelled lookup later, from the loop, and uses its base then: a base a
 * reload replaced is freed once none is left (resolve_sweep). */
struct resolve_dns {
	struct evdns_base *base;
	unsigned pending;                /* lookups whose callback has not run */
	TAILQ_ENTRY(resolve_dns) link;   /* the resolver's retired bases */
};

/* One named server of a backend; owned by its backend record. */
struct resolve_name {
	struct resolve_backend *rb;      /* owner */
	char *host;                      /* lower-cased, as configured */
	uint16_t port;                   /* host byte order */
	struct sockaddr_storage *addrs;  /* the last good set, sorted, port set */
	size_t n_addrs;
	struct resolve_lookup *lookup;   /* the lookup under way, or NULL */
	int last;                        /* outcome of the last lookup; -1: none yet */
};

/* A backend with names, one per pool that serves it; lives as long as the
 * pool, whose configuration (expanded) it owns. */
struct resolve_backend {
	struct resolve *r;
	struct pool *pool;
	const struct config_backend *conf;   /* as configured; lives in pool->cfg */
	struct config_backend *expanded;     /* what the pool was given (p->conf), owned */
	struct resolve_name **names;         /* one per named server, in order */
	size_t n_names;
	struct event *timer;                 /* every resolve_interval */
	unsigned stale:1;                    /* the pool missed a set (out of memory) */
	uint64_t counts[RESOLVE_RESULT_COUNT]; /* atomic: read by metrics */
	TAILQ_ENTRY(resolve_backend) link;
};

/* One lookup, the argument of its callback: nm is NULL once it is
 * cancelled (nm may be gone by the time evdns says so). */
struct resolve_lookup {
	struct resolve_name *nm;
	struct resolve_dns *dns;
	struct evdns_getaddrinfo_request *req; /* NULL until evdns_getaddrinfo returns */
};

struct resolve {
	struct loop *loop;
	struct resolve_dns *dns;             /* NULL while no backend has a name */
	TAILQ_HEAD(, resolve_dns) retired;   /* replaced, lookups still to report */
	TAILQ_HEAD(, resolve_backend) backends; /* changed under the structure lock */
};

const char *
resolve_result_name(enum resolve_result res)
{
	static const char *const names[RESOLVE_RESULT_COUNT] = { "ok", "error", "empty" };

	return (unsigned)res < RESOLVE_RESULT_COUNT ? names[res] : "unknown";
}

LOG_LIMIT(resolve_limit_evdns, "resolver messages");

/* evdns logs on its own: through the log's queue, never to stderr from a
 * worker. It says only whether a line is a warning; the others trace
 * every request and packet, and sluice's own lines say what each lookup
 * came to, so they are left out. */
static void
resolve_evdns_log(int is_warn, const char *msg)
{
	if (is_warn)
		log_limited(&resolve_limit_evdns, LOG_WARN, "resolver: %s", msg);
}

struct resolve *
resolve_new(struct loop *l)
{
	struct resolve *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	evdns_set_log_fn(resolve_evdns_log);   /* process-wide; the same every time */
	r->loop = l;
	TAILQ_INIT(&r->retired);
	TAILQ_INIT(&r->backends);
	return r;
}

/* ---- text for logs and metric labels --------------------------------- */

/* The set as "a, b, c" (truncated when long), "nothing" when empty. */
static void
resolve_set_text(const struct sockaddr_storage *addrs, size_t n, char *out, size_t len)
{
	size_t used = 0;

	snprintf(out, len, "%s", n == 0 ? "nothing" : "");
	for (size_t i = 0; i < n && used + 1 < len; i++) {
		char one[64];

		config_addr_format((const struct sockaddr *)&addrs[i], one, sizeof(one));
		used += (size_t)snprintf(out + used, len - used, "%s%s", i ? ", " : "", one);
	}
}

/* ---- the pool's configuration ------------------------------------------ */

/* A configuration resolve_expand made; NULL is fine. */
static void
resolve_expanded_free(struct config_backend *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n_servers; i++)
		free(b->servers[i].addr.text);
	free(b->servers);
	free(b);
}

/* One server of a name: the address, labelled "name:port/address". */
static int
resolve_server_fill(struct config_server *s, const struct config_server *named,
		    const struct sockaddr_storage *addr)
{
	char text[RESOLVE_TEXT_MAX], at[64];

	memset(s, 0, sizeof(*s));
	s->mark = named->mark;
	s->addr.mark = named->addr.mark;
	s->addr.ss = *addr;
	s->addr.len = addr->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	config_addr_format((const struct sockaddr *)addr, at, sizeof(at));
	snprintf(text, sizeof(text), "%s:%u/%s", named->addr.host, (unsigned)named->addr.port, at);
	s->addr.text = strdup(text);
	return s->addr.text == NULL ? -1 : 0;
}

/* conf with each named server replaced by its names[]' addresses: a new
 * configuration (servers and their texts owned by it, the rest shared
 * with conf) for a pool to point at. NULL when out of memory. */
static struct config_backend *
resolve_expand(const struct config_backend *conf, struct resolve_name *const *names)
{
	struct config_backend *out = malloc(sizeof(*out));
	size_t n = 0, j = 0;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < conf->n_servers; i++)
		n += conf->servers[i].addr.host != NULL ? names[j++]->n_addrs : 1;
	*out = *conf;
	out->n_servers = 0;
	out->servers = calloc(n + 1, sizeof(*out->servers));
	if (out->servers == NULL)
		goto oom;
	j = 0;
	for (size_t i = 0; i < conf->n_servers; i++) {
		const struct config_server *cs = &conf->servers[i];
		const struct resolve_name *nm = cs->addr.host != NULL ? names[j++] : NULL;

		if (nm == NULL) {
			out->servers[out->n_servers] = *cs;
			out->servers[out->n_servers].addr.text = strdup(cs->addr.text);
			if (out->servers[out->n_servers++].addr.text == NULL)
				goto oom;
			continue;
		}
		for (size_t a = 0; a < nm->n_addrs; a++) {
			if (resolve_server_fill(&out->servers[out->n_servers++], cs, &nm->addrs[a]) < 0)
				goto oom;
		}
	}
	return out;
oom:
	resolve_expanded_free(out);
	return NULL;
}

/* Gives the pool the backend's current sets (from the loop, not under the
 * structure lock). A pool being drained away gets nothing new. */
static void
resolve_backend_apply(struct resolve_backend *rb)
{
	struct pool *p = rb->pool;
	struct config_backend *next;
	int rc = -1;

	if (rb->r->loop->stopping || p->removed)
		return;
	rb->stale = 1;
	next = resolve_expand(rb->conf, rb->names);
	if (next != NULL) {
		pthread_mutex_lock(&rb->r->loop->structure_lock);
		rc = pool_reconfigure(p, p->cfg, next);
		pthread_mutex_unlock(&rb->r->loop->structure_lock);
	}
	if (rc < 0) {
		log_error("backend %s: out of memory applying resolved addresses; will retry", p->name);
		resolve_expanded_free(next);
		return;
	}
	resolve_expanded_free(rb->expanded);
	rb->expanded = next;
	rb->stale = 0;
}

/* ---- lookups ------------------------------------------------------------ */

static int
resolve_addr_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct sockaddr_storage));
}

/* The TCP addresses of res with the name's port, sorted and without
 * repeats, into a malloc'd array (*out, NULL when none). 0 or -1. */
static int
resolve_collect(const struct evutil_addrinfo *res, uint16_t port, struct sockaddr_storage **out,
		size_t *n_out)
{
	size_t n = 0, k = 0;

	for (const struct evutil_addrinfo *ai = res; ai != NULL && n < RESOLVE_MAX_ADDRS; ai = ai->ai_next)
		n++;
	*out = NULL;
	*n_out = 0;
	if (n == 0)
		return 0;
	*out = calloc(n, sizeof(**out));
	if (*out == NULL)
		return -1;
	for (const struct evutil_addrinfo *ai = res; ai != NULL && k < n; ai = ai->ai_next) {
		struct sockaddr_storage *ss = &(*out)[k];

		if (ai->ai_family == AF_INET && ai->ai_addrlen >= sizeof(struct sockaddr_in)) {
			memcpy(ss, ai->ai_addr, sizeof(struct sockaddr_in));
			((struct sockaddr_in *)(void *)ss)->sin_port = htons(port);
		} else if (ai->ai_family == AF_INET6 && ai->ai_addrlen >= sizeof(struct sockaddr_in6)) {
			memcpy(ss, ai->ai_addr, sizeof(struct sockaddr_in6));
			((struct sockaddr_in6 *)(void *)ss)->sin6_port = htons(port);
		} else {
			continue;
		}
		k++;
	}
	qsort(*out, k, sizeof(**out), resolve_addr_cmp);
	for (size_t i = 0; i < k; i++) {
		if (*n_out == 0 || resolve_addr_cmp(&(*out)[*n_out - 1], &(*out)[i]) != 0)
			(*out)[(*n_out)++] = (*out)[i];
	}
	return 0;
}

/* Failures are logged when the outcome changes, not at every lookup. */
static void
resolve_name_failed(struct resolve_name *nm, enum resolve_result res, const char *why)
{
	const char *name = nm->rb->pool->name;

	if (nm->last == (int)res)
		return;
	if (nm->n_addrs == 0)
		log_warn("backend %s: cannot resolve %s (%s): it has no address to connect to until it does",
			 name, nm->host, why);
	else
		log_warn("backend %s: cannot resolve %s (%s); keeping its last %zu address(es)",
			 name, nm->host, why, nm->n_addrs);
}

/* A good answer: a different set goes to the pool. */
static void
resolve_name_resolved(struct resolve_name *nm, struct sockaddr_storage *addrs, size_t n)
{
	struct resolve_backend *rb = nm->rb;
	char was[256], now[256];
	bool same = n == nm->n_addrs && memcmp(addrs, nm->addrs, n * sizeof(*addrs)) == 0;

	if (same) {
		free(addrs);
		if (nm->last != RESOLVE_OK && nm->last != -1)
			log_info("backend %s: %s resolves again, to the same address(es)", rb->pool->name, nm->host);
		if (rb->stale)
			resolve_backend_apply(rb);
		return;
	}
	resolve_set_text(nm->addrs, nm->n_addrs, was, sizeof(was));
	resolve_set_text(addrs, n, now, sizeof(now));
	log_info("backend %s: %s resolves to %s (was %s)", rb->pool->name, nm->host, now, was);
	free(nm->addrs);
	nm->addrs = addrs;
	nm->n_addrs = n;
	resolve_backend_apply(rb);
}

/* What one lookup of nm came to. */
static void
resolve_name_done(struct resolve_name *nm, int err, struct evutil_addrinfo *res)
{
	struct sockaddr_storage *addrs = NULL;
	size_t n = 0;
	enum resolve_result outcome;

	if (err == 0 && resolve_collect(res, nm->port, &addrs, &n) < 0)
		err = EVUTIL_EAI_MEMORY;
	if (res != NULL)
		evutil_freeaddrinfo(res);
	if (err == 0 && n > 0)
		outcome = RESOLVE_OK;
	else if (err == 0 || err == EVUTIL_EAI_NONAME || err == EVUTIL_EAI_NODATA)
		outcome = RESOLVE_EMPTY;
	else
		outcome = RESOLVE_ERROR;
	__atomic_add_fetch(&nm->rb->counts[outcome], 1, __ATOMIC_RELAXED);
	log_debug("backend %s: lookup of %s: %s (%zu address(es))", nm->rb->pool->name, nm->host,
		  resolve_result_name(outcome), n);
	if (outcome == RESOLVE_OK) {
		resolve_name_resolved(nm, addrs, n);
	} else {
		free(addrs);   /* none usable */
		resolve_name_failed(nm, outcome, outcome == RESOLVE_EMPTY ?
				    "no such name, or no A/AAAA record" : evutil_gai_strerror(err));
	}
	nm->last = (int)outcome;
}

/* evdns_getaddrinfo's callback: every lookup ends here exactly once,
 * cancelled ones too (then nobody waits for it). */
static void
resolve_lookup_done(int err, struct evutil_addrinfo *res, void *arg)
{
	struct resolve_lookup *lk = arg;
	struct resolve_name *nm = lk->nm;

	lk->dns->pending--;
	free(lk);
	if (nm == NULL) {
		if (res != NULL)
			evutil_freeaddrinfo(res);
		return;
	}
	nm->lookup = NULL;
	resolve_name_done(nm, err, res);
}

/* From the loop only: an answer from the hosts file comes back at once,
 * and applying it takes the structure lock. */
static void
resolve_name_lookup(struct resolve_name *nm)
{
	struct resolve_dns *dns = nm->rb->r->dns;
	struct evutil_addrinfo hints;
	struct resolve_lookup *lk;
	struct evdns_getaddrinfo_request *req;

	if (nm->lookup != NULL || dns == NULL)
		return;
	lk = calloc(1, sizeof(*lk));
	if (lk == NULL) {
		log_error("backend %s: out of memory looking up %s; will retry", nm->rb->pool->name, nm->host);
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	lk->nm = nm;
	lk->dns = dns;
	dns->pending++;
	nm->lookup = lk;
	/* NULL: the callback has run (an answer at once, or a failure). */
	req = evdns_getaddrinfo(dns->base, nm->host, NULL, &hints, resolve_lookup_done, lk);
	if (req != NULL)
		lk->req = req;
}

/* Its callback will still run, later, and find nobody waiting. */
static void
resolve_name_cancel(struct resolve_name *nm)
{
	struct resolve_lookup *lk = nm->lookup;

	if (lk == NULL)
		return;
	nm->lookup = NULL;
	lk->nm = NULL;
	if (lk->req != NULL)
		evdns_getaddrinfo_cancel(lk->req);
}

static void
resolve_name_free(struct resolve_name *nm)
{
	if (nm == NULL)
		return;
	resolve_name_cancel(nm);
	free(nm->addrs);
	free(nm->host);
	free(nm);
}

static struct resolve_name *
resolve_name_new(struct resolve_backend *rb, const struct config_addr *addr)
{
	struct resolve_name *nm = calloc(1, sizeof(*nm));

	if (nm == NULL || (nm->host = strdup(addr->host)) == NULL) {
		free(nm);
		return NULL;
	}
	nm->rb = rb;
	nm->port = addr->port;
	nm->last = -1;
	return nm;
}

/* ---- backends ------------------------------------------------------------ */

static void
resolve_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct resolve_backend *rb = arg;

	(void)fd;
	(void)what;
	resolve_sweep(rb->r, false);
	if (rb->r->loop->stopping)
		return;
	for (size_t i = 0; i < rb->n_names; i++)
		resolve_name_lookup(rb->names[i]);
}

/* Every interval, and once now (from the loop: see resolve_name_lookup). */
static int
resolve_backend_arm(struct resolve_backend *rb)
{
	uint64_t ms = rb->conf->resolve_interval_ms ? rb->conf->resolve_interval_ms : RESOLVE_DEFAULT_INTERVAL_MS;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	if (event_add(rb->timer, &tv) < 0)
		return -1;
	event_active(rb->timer, 0, 0);   /* not EV_TIMEOUT: the next one comes an interval from now */
	return 0;
}

static void
resolve_names_free(struct resolve_name **names, size_t n)
{
	for (size_t i = 0; names != NULL && i < n; i++)
		resolve_name_free(names[i]);
	free(names);
}

static void
resolve_backend_free(struct resolve_backend *rb)
{
	if (rb->timer != NULL)
		event_free(rb->timer);
	resolve_names_free(rb->names, rb->n_names);
	resolve_expanded_free(rb->expanded);
	free(rb);
}

static struct resolve_backend *
resolve_backend_new(struct resolve *r)
{
	struct resolve_backend *rb = calloc(1, sizeof(*rb));

	if (rb == NULL)
		return NULL;
	rb->r = r;
	rb->timer = event_new(r->loop->base, -1, EV_PERSIST, resolve_timer_cb, rb);
	if (rb->timer == NULL) {
		free(rb);
		return NULL;
	}
	return rb;
}

static struct resolve_backend *
resolve_backend_of(const struct resolve *r, const struct pool *p)
{
	struct resolve_backend *rb;

	TAILQ_FOREACH(rb, &r->backends, link) {
		if (rb->pool == p)
			return rb;
	}
	return NULL;
}

static size_t
resolve_count_names(const struct config_backend *b)
{
	size_t n = 0;

	for (size_t i = 0; i < b->n_servers; i++)
		n += b->servers[i].addr.host != NULL;
	return n;
}

/* Whether nm is one of rb's current names (not made by a plan). */
static bool
resolve_name_current(const struct resolve_backend *rb, const struct resolve_name *nm)
{
	for (size_t k = 0; k < rb->n_names; k++) {
		if (rb->names[k] == nm)
			return true;
	}
	return false;
}

/* A plan that is not used: its new names go, rb's stay. */
static void
resolve_plan_drop(struct resolve_backend *rb, struct resolve_name **names, size_t n)
{
	for (size_t i = 0; names != NULL && i < n; i++) {
		if (names[i] != NULL && !resolve_name_current(rb, names[i]))
			resolve_name_free(names[i]);
	}
	free(names);
}

/* The names b's named servers need, in order: rb's that stay are reused,
 * so that their sets survive a reload; the others are new. NULL when out
 * of memory (rb untouched). */
static struct resolve_name **
resolve_plan_names(struct resolve_backend *rb, const struct config_backend *b)
{
	size_t n = resolve_count_names(b), j = 0;
	struct resolve_name **names = calloc(n + 1, sizeof(*names));
	bool *taken = calloc(rb->n_names + 1, sizeof(*taken));

	for (size_t i = 0; names != NULL && taken != NULL && i < b->n_servers; i++) {
		const struct config_addr *a = &b->servers[i].addr;

		if (a->host == NULL)
			continue;
		for (size_t k = 0; k < rb->n_names && names[j] == NULL; k++) {
			if (!taken[k] && rb->names[k]->port == a->port && strcmp(rb->names[k]->host, a->host) == 0) {
				taken[k] = true;
				names[j] = rb->names[k];
			}
		}
		if (names[j] == NULL && (names[j] = resolve_name_new(rb, a)) == NULL)
			break;
		j++;
	}
	free(taken);
	if (names != NULL && j < n) {
		resolve_plan_drop(rb, names, n);
		return NULL;
	}
	return names;
}

/* The plan is in force: rb's names that it left out go. */
static void
resolve_plan_commit(struct resolve_backend *rb, const struct config_backend *b,
		    struct resolve_name **names, struct config_backend *expanded)
{
	size_t n = resolve_count_names(b);

	for (size_t k = 0; k < rb->n_names; k++) {
		bool kept = false;

		for (size_t i = 0; i < n && !kept; i++)
			kept = names[i] == rb->names[k];
		if (!kept)
			resolve_name_free(rb->names[k]);
	}
	free(rb->names);
	rb->names = names;
	rb->n_names = n;
	rb->conf = b;
	resolve_expanded_free(rb->expanded);
	rb->expanded = expanded;
}

/* b's pool gets the plan's servers: a new one (*p NULL) or *p
 * reconfigured. 0 or -1 (out of memory: nothing changed). */
static int
resolve_plan_apply(struct resolve_backend *rb, struct pool **p, struct config *cfg,
		   const struct config_backend *b)
{
	struct resolve_name **names = resolve_plan_names(rb, b);
	struct config_backend *next = names != NULL ? resolve_expand(b, names) : NULL;
	bool made = *p == NULL;

	if (next != NULL && made)
		*p = pool_new(rb->r->loop, cfg, next);
	if (next == NULL || *p == NULL || (!made && pool_reconfigure(*p, cfg, next) < 0)) {
		resolve_expanded_free(next);
		if (names != NULL)
			resolve_plan_drop(rb, names, resolve_count_names(b));
		return -1;
	}
	resolve_plan_commit(rb, b, names, next);
	return 0;
}

struct pool *
resolve_pool_new(struct resolve *r, struct config *cfg, const struct config_backend *b)
{
	struct resolve_backend *rb;
	struct pool *p = NULL;

	if (resolve_count_names(b) == 0)
		return pool_new(r->loop, cfg, b);
	rb = resolve_backend_new(r);
	if (rb == NULL || resolve_plan_apply(rb, &p, cfg, b) < 0) {
		log_error("backend %s: out of memory setting up its names", b->name);
		if (rb != NULL)
			resolve_backend_free(rb);
		return NULL;
	}
	rb->pool = p;
	TAILQ_INSERT_TAIL(&r->backends, rb, link);
	if (resolve_backend_arm(rb) < 0)
		log_error("backend %s: cannot schedule the lookups of its names", b->name);
	return p;
}

int
resolve_pool_reconfigure(struct resolve *r, struct pool *p, struct config *cfg,
			 const struct config_backend *b)
{
	struct resolve_backend *rb = resolve_backend_of(r, p);
	bool fresh = rb == NULL;

	if (resolve_count_names(b) == 0) {
		if (pool_reconfigure(p, cfg, b) < 0)
			return -1;
		if (rb != NULL) {
			/* The pool no longer looks at rb's configuration. */
			TAILQ_REMOVE(&r->backends, rb, link);
			resolve_backend_free(rb);
		}
		return 0;
	}
	if (fresh && (rb = resolve_backend_new(r)) == NULL)
		return -1;
	rb->pool = p;
	if (resolve_plan_apply(rb, &p, cfg, b) < 0) {
		if (fresh)
			resolve_backend_free(rb);
		return -1;
	}
	if (fresh)
		TAILQ_INSERT_TAIL(&r->backends, rb, link);
	if (resolve_backend_arm(rb) < 0)
		log_error("backend %s: cannot schedule the lookups of its names", b->name);
	return 0;
}

void
resolve_pool_gone(struct resolve *r, const struct pool *p)
{
	struct resolve_backend *rb = resolve_backend_of(r, p);

	if (rb == NULL)
		return;
	pthread_mutex_lock(&r->loop->structure_lock);
	TAILQ_REMOVE(&r->backends, rb, link);
	pthread_mutex_unlock(&r->loop->structure_lock);
	resolve_backend_free(rb);
}

/* ---- the resolver's configuration ---------------------------------------- */

static void
resolve_cancel_all(struct resolve *r)
{
	struct resolve_backend *rb;

	TAILQ_FOREACH(rb, &r->backends, link) {
		for (size_t i = 0; i < rb->n_names; i++)
			resolve_name_cancel(rb->names[i]);
	}
}

/* Frees the retired bases whose lookups have all reported (all: every
 * one, when the loop will not run again). */
static void
resolve_sweep(struct resolve *r, bool all)
{
	struct resolve_dns *dns, *next;

	for (dns = TAILQ_FIRST(&r->retired); dns != NULL; dns = next) {
		next = TAILQ_NEXT(dns, link);
		if (dns->pending > 0 && !all)
			continue;
		TAILQ_REMOVE(&r->retired, dns, link);
		evdns_base_free(dns->base, 0);
		free(dns);
	}
}

/* The base in use stops: its lookups are cancelled. */
static void
resolve_retire_dns(struct resolve *r)
{
	resolve_cancel_all(r);
	if (r->dns != NULL)
		TAILQ_INSERT_TAIL(&r->retired, r->dns, link);
	r->dns = NULL;
	resolve_sweep(r, false);
}

/* resolver: as configured: its nameservers only (any port), its hosts
 * file if any, short tries. What cannot be used is logged and left out:
 * the names then fail to resolve, which sluice lives with (SPEC §8). */
static void
resolve_setup_configured(struct evdns_base *dns, const struct config_resolver *rc)
{
	for (size_t i = 0; i < rc->n_nameservers; i++) {
		const struct config_addr *a = &rc->nameservers[i];

		if (evdns_base_nameserver_sockaddr_add(dns, (const struct sockaddr *)&a->ss, a->len, 0) != 0)
			log_error("resolver: cannot use nameserver %s", a->text);
	}
	if (rc->hosts_file != NULL && evdns_base_load_hosts(dns, rc->hosts_file) != 0)
		log_error("resolver: cannot read hosts file %s", rc->hosts_file);
	if (evdns_base_set_option(dns, "timeout:", RESOLVE_TRY_TIMEOUT) != 0 ||
	    evdns_base_set_option(dns, "attempts:", RESOLVE_TRY_ATTEMPTS) != 0)
		log_error("resolver: cannot set its timeout; evdns's defaults apply");
}

static bool
resolve_config_has_names(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_backends; i++) {
		if (resolve_count_names(&cfg->backends[i]) > 0)
			return true;
	}
	return false;
}

int
resolve_configure(struct resolve *r, const struct config *cfg)
{
	struct resolve_backend *rb;

	/* Rebuilt at every reload: resolver: or /etc/resolv.conf may have
	 * changed. The sets stay; lookups under way start again. */
	resolve_retire_dns(r);
	if (!resolve_config_has_names(cfg))
		return 0;
	r->dns = calloc(1, sizeof(*r->dns));
	if (r->dns != NULL)
		r->dns->base = evdns_base_new(r->loop->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (r->dns == NULL || r->dns->base == NULL) {
		log_error("resolver: cannot create it: out of memory");
		free(r->dns);
		r->dns = NULL;
		return -1;
	}
	if (cfg->resolver.configured) {
		resolve_setup_configured(r->dns->base, &cfg->resolver);
	} else {
		int err = evdns_base_resolv_conf_parse(r->dns->base, DNS_OPTIONS_ALL, "/etc/resolv.conf");

		if (err != 0)
			log_warn("resolver: /etc/resolv.conf could not be used fully (evdns error %d)", err);
	}
	TAILQ_FOREACH(rb, &r->backends, link)
		event_active(rb->timer, 0, 0);   /* not EV_TIMEOUT: the next one comes an interval from now */
	return 0;
}

void
resolve_free(struct resolve *r)
{
	struct resolve_backend *rb;

	if (r == NULL)
		return;
	resolve_retire_dns(r);
	while ((rb = TAILQ_FIRST(&r->backends)) != NULL) {
		TAILQ_REMOVE(&r->backends, rb, link);
		resolve_backend_free(rb);
	}
	/* Lookups that have not reported by now never will: the loop is
	 * over (resolve_stop gave them their chance). */
	resolve_sweep(r, true);
	free(r);
}

bool
resolve_stop(struct resolve *r)
{
	struct resolve_backend *rb;
	struct resolve_dns *dns;

	if (r == NULL)
		return false;
	TAILQ_FOREACH(rb, &r->backends, link)
		event_del(rb->timer);
	resolve_retire_dns(r);
	TAILQ_FOREACH(dns, &r->retired, link) {
		if (dns->pending > 0)
			return true;
	}
	return false;
}

int
resolve_each_backend(const struct resolve *r, resolve_counts_fn fn, void *arg)
{
	const struct resolve_backend *rb;

	TAILQ_FOREACH(rb, &r->backends, link) {
		uint64_t counts[RESOLVE_RESULT_COUNT];

		for (unsigned i = 0; i < RESOLVE_RESULT_COUNT; i++)
			counts[i] = __atomic_load_n(&rb->counts[i], __ATOMIC_RELAXED);
		if (fn(arg, rb->pool->name, counts) < 0)
			return -1;
	}
	return 0;
}

/*
 * config_fleet — the keys of SPEC §8 (docs/CONFIG.md, "Routing and
 * fleet"): routes, PROXY protocol and its trusted networks, servers given
 * by DNS name, health checks, ejection, the resolver, and the rules that
 * tie them to the rest of the file. Parsers for config_schema's key
 * tables, and checks for config.c once every section is read.
 */
#ifndef SLUICE_CONFIG_FLEET_H
#define SLUICE_CONFIG_FLEET_H

#include <yaml.h>

#include <sluice/config_types.h>
#include <sluice/config_yaml.h>

/* Key-table parsers (config_yaml_parse_fn). field is: */
/* a struct config_addr: numeric host:port, or name:port (addr->host). */
int config_fleet_parse_server_address(struct config_yaml *y, yaml_node_t *node,
				      const char *kpath, void *field);
/* the whole struct config_listener: fills routes and n_routes. */
int config_fleet_parse_routes(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			      void *field);
/* an enum config_proxy_protocol. */
int config_fleet_parse_proxy_protocol(struct config_yaml *y, yaml_node_t *node,
				      const char *kpath, void *field);
/* the whole struct config_listener: fills proxy_trusted, n_proxy_trusted. */
int config_fleet_parse_proxy_trusted(struct config_yaml *y, yaml_node_t *node,
				     const char *kpath, void *field);
/* a struct config_health. */
int config_fleet_parse_health(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			      void *field);
/* unsigned: eject_after, a count from 1. */
int config_fleet_parse_eject_after(struct config_yaml *y, yaml_node_t *node,
				   const char *kpath, void *field);
/* uint64_t ms: eject_time, at most the 5 minute cap. */
int config_fleet_parse_eject_time(struct config_yaml *y, yaml_node_t *node,
				  const char *kpath, void *field);
/* unsigned: max_ejected_percent, 0 to 100. */
int config_fleet_parse_percent(struct config_yaml *y, yaml_node_t *node, const char *kpath,
			       void *field);
/* uint64_t: max_connections_per_address, a count from 1. */
int config_fleet_parse_per_address(struct config_yaml *y, yaml_node_t *node,
				   const char *kpath, void *field);
/* the whole struct config: fills resolver. */
int config_fleet_parse_resolver(struct config_yaml *y, yaml_node_t *node, const char *kpath,
				void *field);

/* Sets the §8 defaults of a backend (resolve_interval, health, ejection). */
void config_fleet_backend_defaults(struct config_backend *b);

/* Rules within one listener once its keys are read: proxy_protocol needs
 * proxy_trusted (not the other way round: an operator may list the load
 * balancers before turning the protocol on); an alpn route needs tls.alpn to list it.
 * kpath is "listen[i]"; proxy_at is where proxy_protocol was written
 * (NULL when it was not). */
void config_fleet_check_listener(struct config_yaml *y, const struct config_listener *l,
				 const char *kpath, const struct config_mark *proxy_at);

/* Rules between sections, for config.c: route backends resolved; a
 * probe frame fits limits.max_frame_size. */
void config_fleet_check(struct config_yaml *y, struct config *cfg);

/* Frees what the parsers above allocated. */
void config_fleet_clear_listener(struct config_listener *l);
void config_fleet_clear_backend(struct config_backend *b);
void config_fleet_clear(struct config *cfg);

#endif

"""Connections found in a Compose file: rewritten to the proxy's listener, or listed with the reason they are not."""

from __future__ import annotations


def test_urls_host_port_pairs_and_command_addresses_become_links_the_rest_has_reasons(proj) -> None:
    proj.dockerfile("app")
    proj.compose("""\
        services:
          web:
            build: app
            environment:
              DATABASE_URL: postgres://u:p@db:5432/app
              CACHE_HOST: cache
              CACHE_PORT: "6379"
              SYSLOG: udp://logs:514
              SEARCH: http://search:9200
              HOSTNET: metrics:9100
            command: ["serve", "--broker", "mq:5672"]
            depends_on: [db, cache, mq]
          db: {image: postgres:15}
          cache: {image: redis:7}
          mq: {image: rabbitmq:3}
          logs: {image: syslog, ports: ["514:514/udp"]}
          search: {image: elasticsearch:8, deploy: {replicas: 2}}
          metrics: {image: exporter, network_mode: host}
        """)
    imported = proj.imported()
    stack = imported.stack
    assert stack["links"] == ["web->cache", "web->db", "web->mq"]
    web = stack["services"]["web"]
    assert web["env"]["DATABASE_URL"] == "postgres://u:p@{route:db}/app"
    assert (web["env"]["CACHE_HOST"], web["env"]["CACHE_PORT"]) == ("{route:cache:host}", "{route:cache:port}")
    assert web["command"] == ["serve", "--broker", "{route:mq}"]
    assert [(u.server, u.where, u.reason) for u in imported.unrouted] == [
        ("logs", "environment.SYSLOG", "UDP port 514 of logs: the fault proxy carries TCP only: not interposed"),
        ("search", "environment.SEARCH", "search runs 2 replicas behind one name: one address cannot spread over their "
                                         "proxies: not interposed (scale it to 1 in the Compose file to interpose it)"),
        ("metrics", "environment.HOSTNET", "metrics runs with network_mode: host: not interposed"),
    ]
    # addresses left as written where not interposed; servers' ports from their images; replicas carried over
    assert web["env"]["SEARCH"] == "http://search:9200"
    assert {n: stack["services"][n]["port"] for n in ("db", "cache", "mq", "search")} == {
        "db": 5432, "cache": 6379, "mq": 5672, "search": 9200}
    assert stack["services"]["search"]["replicas"] == 2


def test_link_aliases_and_network_aliases_are_names_of_the_server(proj) -> None:
    proj.dockerfile("app")
    proj.compose("""\
        version: "2.4"
        services:
          api:
            build: app
            environment: [PRIMARY=database:5432, REPLICA=pg.internal:5432]
            links: ["postgres:database"]
          postgres:
            image: postgres:15
            networks:
              default:
                aliases: [pg.internal]
        """)
    stack = proj.imported().stack
    assert stack["links"] == ["api->postgres"]
    assert stack["services"]["api"]["env"] == {"PRIMARY": "{route:postgres}", "REPLICA": "{route:postgres}"}
    assert set(stack["services"]["postgres"]["container"]["aliases"]) == {"postgres", "pg.internal", "database"}

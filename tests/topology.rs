//! Topology loading: the embedded default, and bad inputs that must each give exactly one
//! clear error naming the field and the line (injection attempts included).

use vezasock::topology::{Color, LoadError, PathOverrides, Servers, Topology, TopologyError};

/// A small valid topology; each bad case edits one line of it.
const BASE: &str = r#"name = "t"
cookie = "sid"

[[component]]
name = "api"
paths = ["/api"]
port = 8080

[[component]]
name = "web"
port = 3000

[[env]]
name = "staging"
hosts = ["staging.veza.fr"]
components = ["api", "web"]

[[env]]
name = "prod"
hosts = ["veza.fr"]
components = ["web"]

[[external]]
name = "forgejo"
hosts = ["forgejo.talas.group"]
servers = ["10.0.20.105:3000"]
"#;

fn load(text: &str) -> Result<Topology, LoadError> {
    Topology::from_toml(text, "test.toml")
}

/// Replaces `from` (which must occur) with `to` in BASE.
fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "BASE has no {from:?}");
    BASE.replacen(from, to, 1)
}

/// Expects exactly one error, on `field`, on the line where the first `marker` starts.
fn expect_one(text: &str, field: &str, marker: &str) -> TopologyError {
    let errors = match load(text) {
        Ok(_) => panic!("accepted bad input for {field}:\n{text}"),
        Err(e) => e.errors().to_vec(),
    };
    assert_eq!(
        errors.len(),
        1,
        "expected one error for {field}, got {errors:#?}"
    );
    let e = errors[0].clone();
    assert_eq!(e.field, field, "{e}");
    // The marker may span lines; the error must be on the line where it starts.
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("marker {marker:?} not in the text"));
    let line = text[..at].matches('\n').count() + 1;
    assert_eq!(e.line, Some(line), "{e}");
    assert_eq!(e.file, "test.toml");
    let shown = e.to_string();
    assert!(shown.starts_with(&format!("test.toml:{line}:")), "{shown}");
    assert!(shown.contains(field), "{shown}");
    e
}

#[test]
fn base_and_embedded_default_load() {
    let t = load(BASE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.envs.len(), 2);
    let d = Topology::embedded_default().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.name, "veza");
    let names: Vec<&str> = d.envs.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["staging", "prod"]);
    let staging = d.env("staging").unwrap_or_else(|| panic!("no staging"));
    assert_eq!(staging.cookie, "veza_srv_staging");
    assert_eq!(staging.hosts, ["staging.veza.fr"]);
    let api = &staging.components[0];
    assert_eq!(
        api.servers.of(Color::Blue)[0].address.to_string(),
        "veza-staging-api-blue.lxd:8080"
    );
    let prod = d.env("prod").unwrap_or_else(|| panic!("no prod"));
    assert_eq!(prod.hosts, ["veza.fr", "www.veza.fr"]);
    assert_eq!(
        prod.components[2].servers.of(Color::Green)[0]
            .address
            .to_string(),
        "veza-web-green.lxd:3000"
    );
    assert!(d.component("stream").is_some_and(|c| c.http_no_delay));
    let forgejo = &d.externals[0];
    assert_eq!(forgejo.servers[0].address.to_string(), "10.0.20.105:3000");
    assert!(
        d.externals[1].servers.is_empty(),
        "the Talas vitrine is a 503 placeholder"
    );
    assert!(d.tls.is_some() && d.acme.is_some());
}

#[test]
fn hosts_are_lowercased_and_pools_load() {
    let text = edit("hosts = [\"veza.fr\"]\ncomponents = [\"web\"]", "hosts = [\"Veza.FR\"]\ncolors = false\ncomponents = [\"web\"]\n[env.servers]\nweb = { pool = [\"10.0.0.1:80\", \"10.0.0.2:80\"] }");
    let t = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let prod = t.env("prod").unwrap_or_else(|| panic!("no prod"));
    assert_eq!(prod.hosts, ["veza.fr"]);
    assert!(
        matches!(&prod.components[0].servers, Servers::Pool(p) if p.len() == 2 && p[1].name == "srv_2")
    );
}

// ---- host names ----

#[test]
fn host_with_space() {
    expect_one(
        &edit("\"staging.veza.fr\"", "\"staging veza.fr\""),
        "env.staging.hosts[0]",
        "staging veza",
    );
}

#[test]
fn host_with_newline_injection() {
    let e = expect_one(
        &edit("\"staging.veza.fr\"", "\"staging.veza.fr\\nbackend evil\""),
        "env.staging.hosts[0]",
        "backend evil",
    );
    assert!(e.message.contains("newline"), "{e}");
}

#[test]
fn host_with_semicolon() {
    expect_one(
        &edit("\"staging.veza.fr\"", "\"a.fr;set map x y\""),
        "env.staging.hosts[0]",
        "a.fr;",
    );
}

#[test]
fn host_with_hash() {
    expect_one(
        &edit("\"staging.veza.fr\"", "\"a.fr#x\""),
        "env.staging.hosts[0]",
        "a.fr#x",
    );
}

#[test]
fn host_with_empty_label() {
    expect_one(
        &edit("\"staging.veza.fr\"", "\"staging..veza.fr\""),
        "env.staging.hosts[0]",
        "staging..veza",
    );
}

#[test]
fn host_label_too_long() {
    let long = format!("\"{}.fr\"", "a".repeat(64));
    expect_one(
        &edit("\"staging.veza.fr\"", &long),
        "env.staging.hosts[0]",
        "aaaa",
    );
}

#[test]
fn host_duplicated_across_envs() {
    let e = expect_one(
        &edit("hosts = [\"veza.fr\"]", "hosts = [\"STAGING.veza.fr\"]"),
        "env.prod.hosts[0]",
        "STAGING",
    );
    assert!(e.message.contains("env \"staging\""), "{e}");
}

#[test]
fn host_duplicated_with_external() {
    let e = expect_one(
        &edit("\"forgejo.talas.group\"", "\"veza.fr\""),
        "external.forgejo.hosts[0]",
        "hosts = [\"veza.fr\"]\nservers",
    );
    assert!(e.message.contains("env \"prod\""), "{e}");
}

// ---- components ----

#[test]
fn unknown_component_in_env() {
    let e = expect_one(
        &edit("components = [\"web\"]", "components = [\"wbe\"]"),
        "env.prod.components[0]",
        "\"wbe\"",
    );
    assert!(e.message.contains("unknown component"), "{e}");
}

#[test]
fn servers_for_unknown_component() {
    let text = edit(
        "components = [\"web\"]\n",
        "components = [\"web\"]\n[env.servers]\nstream = { blue = [\"10.0.0.1:80\"], green = [\"10.0.0.2:80\"] }\n",
    );
    expect_one(&text, "env.prod.servers.stream", "stream = {");
}

#[test]
fn component_name_with_underscore() {
    // Renamed where declared and where used: one error, where it is declared.
    expect_one(
        &BASE.replace("\"api\"", "\"my_api\""),
        "component[0].name",
        "my_api",
    );
}

#[test]
fn component_name_injection() {
    let text = BASE.replace("\"api\"", "\"api\\n    server x 1.2.3.4:80\"");
    let e = expect_one(&text, "component[0].name", "server x");
    assert!(e.message.contains("newline"), "{e}");
}

#[test]
fn component_port_zero() {
    expect_one(
        &edit("port = 8080", "port = 0"),
        "component.api.port",
        "port = 0",
    );
}

#[test]
fn two_catch_all_components() {
    expect_one(
        &edit("paths = [\"/api\"]\n", ""),
        "component.web.paths",
        "name = \"web\"",
    );
}

// ---- path rules ----

#[test]
fn path_without_leading_slash() {
    expect_one(
        &edit("\"/api\"", "\"api\""),
        "component.api.paths[0]",
        "\"api\"]",
    );
}

#[test]
fn path_with_space() {
    expect_one(
        &edit("\"/api\"", "\"/api if TRUE\""),
        "component.api.paths[0]",
        "/api if",
    );
}

#[test]
fn path_with_hash() {
    expect_one(
        &edit("\"/api\"", "\"/api#x\""),
        "component.api.paths[0]",
        "/api#",
    );
}

#[test]
fn path_with_quote() {
    expect_one(
        &edit("\"/api\"", "'/api\"x'"),
        "component.api.paths[0]",
        "/api\"x",
    );
}

#[test]
fn path_with_brace() {
    expect_one(
        &edit("\"/api\"", "\"/api{x}\""),
        "component.api.paths[0]",
        "/api{",
    );
}

#[test]
fn path_with_semicolon() {
    expect_one(
        &edit("\"/api\"", "\"/api;x\""),
        "component.api.paths[0]",
        "/api;",
    );
}

#[test]
fn path_with_newline() {
    expect_one(
        &edit("\"/api\"", "\"/api\\nuse_backend x\""),
        "component.api.paths[0]",
        "use_backend x",
    );
}

// ---- addresses ----

#[test]
fn address_without_port() {
    expect_one(
        &edit("\"10.0.20.105:3000\"", "\"10.0.20.105\""),
        "external.forgejo.servers[0]",
        "\"10.0.20.105\"",
    );
}

#[test]
fn address_port_out_of_range() {
    expect_one(
        &edit("\"10.0.20.105:3000\"", "\"10.0.20.105:70000\""),
        "external.forgejo.servers[0]",
        "70000",
    );
}

#[test]
fn address_bad_ipv4() {
    expect_one(
        &edit("\"10.0.20.105:3000\"", "\"10.0.20.305:3000\""),
        "external.forgejo.servers[0]",
        "10.0.20.305",
    );
}

#[test]
fn address_with_extra_words() {
    let e = expect_one(
        &edit("\"10.0.20.105:3000\"", "\"10.0.20.105:3000 backup\""),
        "external.forgejo.servers[0]",
        "3000 backup",
    );
    assert!(e.message.contains("space"), "{e}");
}

#[test]
fn address_newline_injection() {
    expect_one(
        &edit("\"10.0.20.105:3000\"", "\"10.0.20.105:3000\\nlisten evil\""),
        "external.forgejo.servers[0]",
        "listen evil",
    );
}

// ---- names and cookies ----

#[test]
fn env_name_uppercase() {
    expect_one(
        &edit("name = \"prod\"", "name = \"Prod\""),
        "env[1].name",
        "\"Prod\"",
    );
}

#[test]
fn env_name_duplicated() {
    expect_one(
        &edit("name = \"prod\"", "name = \"staging\""),
        "env.staging.name",
        "name = \"staging\"\nhosts = [\"veza.fr\"]",
    );
}

#[test]
fn external_name_with_brace() {
    expect_one(
        &edit("name = \"forgejo\"", "name = \"forgejo{\""),
        "external[0].name",
        "forgejo{",
    );
}

#[test]
fn edge_name_with_quote() {
    expect_one(&edit("name = \"t\"", "name = 't\"'"), "name", "name = 't");
}

#[test]
fn cookie_with_semicolon() {
    expect_one(
        &edit("cookie = \"sid\"", "cookie = \"sid;x\""),
        "cookie",
        "sid;x",
    );
}

#[test]
fn cookie_with_equals() {
    expect_one(
        &edit("cookie = \"sid\"", "cookie = \"sid=1\""),
        "cookie",
        "sid=1",
    );
}

#[test]
fn env_cookie_with_newline() {
    let text = edit("name = \"prod\"\n", "name = \"prod\"\ncookie = \"a\\nb\"\n");
    expect_one(&text, "env.prod.cookie", "cookie = \"a");
}

// ---- shape of envs and servers ----

#[test]
fn colored_env_with_pool() {
    let text = edit(
        "components = [\"web\"]\n",
        "components = [\"web\"]\n[env.servers]\nweb = { pool = [\"10.0.0.1:80\"] }\n",
    );
    expect_one(&text, "env.prod.servers.web.pool", "web = {");
}

#[test]
fn colored_env_with_one_color() {
    let text = edit(
        "components = [\"web\"]\n",
        "components = [\"web\"]\n[env.servers]\nweb = { blue = [\"10.0.0.1:80\"] }\n",
    );
    expect_one(&text, "env.prod.servers.web", "web = {");
}

#[test]
fn env_without_hosts() {
    expect_one(
        &edit("hosts = [\"veza.fr\"]\n", ""),
        "env.prod.hosts",
        "name = \"prod\"",
    );
}

// ---- settings ----

#[test]
fn unknown_key_is_a_typo() {
    let e = expect_one(
        &edit("port = 3000", "port = 3000\nhealth = \"/\""),
        "health",
        "health =",
    );
    assert!(e.message.contains("unknown field"), "{e}");
}

#[test]
fn failover_unknown() {
    expect_one(
        &edit(
            "cookie = \"sid\"",
            "cookie = \"sid\"\nfailover = \"other-color\"",
        ),
        "failover",
        "failover",
    );
}

#[test]
fn bad_timeout() {
    expect_one(
        &edit(
            "cookie = \"sid\"\n",
            "cookie = \"sid\"\n[timeouts]\nclient = \"1 h\"\n",
        ),
        "timeouts.client",
        "1 h",
    );
}

#[test]
fn bad_bind() {
    expect_one(
        &edit(
            "cookie = \"sid\"\n",
            "cookie = \"sid\"\n[listen]\nhttp = \"localhost:80\"\n",
        ),
        "listen.http",
        "localhost",
    );
}

#[test]
fn relative_certs_dir() {
    expect_one(
        &edit(
            "cookie = \"sid\"\n",
            "cookie = \"sid\"\n[tls]\ncerts_dir = \"certs\"\n",
        ),
        "tls.certs_dir",
        "certs_dir",
    );
}

#[test]
fn socket_path_with_space() {
    let text = edit(
        "cookie = \"sid\"\n",
        "cookie = \"sid\"\n[paths]\nadmin_socket = \"/run/a.sock level admin\"\n",
    );
    expect_one(&text, "paths.admin_socket", "admin_socket");
}

#[test]
fn unknown_reload_method() {
    let text = edit(
        "cookie = \"sid\"\n",
        "cookie = \"sid\"\n[paths]\nreload_method = \"systemd\"\n",
    );
    expect_one(&text, "paths.reload_method", "reload_method");
}

#[test]
fn acme_path_must_be_a_directory() {
    let text = edit(
        "cookie = \"sid\"\n",
        "cookie = \"sid\"\n[acme]\npath = \"/.well-known/acme-challenge\"\nserver = \"127.0.0.1:8888\"\n",
    );
    expect_one(&text, "acme.path", "path = \"/.well-known");
}

#[test]
fn overrides_are_checked_too() {
    let mut t = load(BASE).unwrap_or_else(|e| panic!("{e}"));
    let bad = PathOverrides {
        maps_dir: Some("/etc/haproxy/maps\nlisten x".into()),
        ..PathOverrides::default()
    };
    let err = t
        .override_paths(&bad)
        .err()
        .map(|e| e.errors().to_vec())
        .unwrap_or_default();
    assert_eq!(err.len(), 1, "{err:?}");
    assert_eq!(err[0].field, "paths.maps_dir");
    assert_eq!(
        t.paths.maps_dir,
        std::path::PathBuf::from("/etc/haproxy/maps"),
        "a refused override changes nothing"
    );
}

#[test]
fn several_errors_are_all_reported() {
    let text = edit("\"/api\"", "\"api\"").replace("\"10.0.20.105:3000\"", "\"x\"");
    let errors = load(&text)
        .err()
        .map(|e| e.errors().to_vec())
        .unwrap_or_default();
    assert_eq!(errors.len(), 2, "{errors:#?}");
}

#[test]
fn local_servers_move_everything_to_loopback() {
    let d = Topology::embedded_default().unwrap_or_else(|e| panic!("{e}"));
    let (local, moved) = d
        .with_local_servers(20000)
        .unwrap_or_else(|e| panic!("{e}"));
    // 2 envs × 3 components × 2 colors + forgejo + acme.
    assert_eq!(moved.len(), 14);
    let mut ports: Vec<u16> = moved.iter().map(|m| m.port).collect();
    ports.dedup();
    assert_eq!(ports, (20000..20014).collect::<Vec<u16>>());
    assert_eq!(moved[0].backend, "be_staging_api_blue");
    assert_eq!(moved[1].backend, "be_staging_api_green");
    for env in &local.envs {
        for c in &env.components {
            for color in Color::ALL {
                assert!(c
                    .servers
                    .of(color)
                    .iter()
                    .all(|s| s.address.host == "127.0.0.1"));
            }
        }
    }
    assert!(
        d.with_local_servers(65530).is_err(),
        "ports past 65535 are refused"
    );
}

/// BASE's components and external with `n` envs `e0`, `e1`, … (one host each).
fn with_envs(n: usize) -> String {
    let head = BASE.split("[[env]]").next().unwrap_or(BASE);
    let mut text = head.to_string();
    for i in 0..n {
        text.push_str(&format!(
            "[[env]]\nname = \"e{i}\"\nhosts = [\"e{i}.veza.fr\"]\ncomponents = [\"api\", \"web\"]\n\n"
        ));
    }
    text
}

#[test]
fn five_hundred_envs_load() {
    // The scale goal: 500 envs (here × 2 components × 2 colors).
    let t = load(&with_envs(500)).unwrap_or_else(|e| panic!("500 envs refused: {e}"));
    assert_eq!(t.envs.len(), 500);
}

#[test]
fn too_many_envs_is_one_clear_error() {
    // The bound still exists: an absurd file is refused with its count and the limit.
    let errors = match load(&with_envs(2_001)) {
        Ok(_) => panic!("accepted 2,001 envs"),
        Err(e) => e.errors().to_vec(),
    };
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].field, "env");
    assert!(
        errors[0]
            .message
            .contains("has 2001 entries; at most 2000 are allowed"),
        "{}",
        errors[0]
    );
    // Other lists keep their smaller bound.
    let hosts: Vec<String> = (0..257).map(|i| format!("\"h{i}.veza.fr\"")).collect();
    let text = edit(
        "hosts = [\"staging.veza.fr\"]",
        &format!("hosts = [{}]", hosts.join(", ")),
    );
    let errors = match load(&text) {
        Ok(_) => panic!("accepted 257 hosts in one env"),
        Err(e) => e.errors().to_vec(),
    };
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("at most 256 are allowed")),
        "{errors:#?}"
    );
}

#[test]
fn an_env_lists_one_backend_per_component_and_color() {
    let topo = Topology::embedded_default().unwrap();
    let staging = topo.env("staging").unwrap().clone();
    let names: Vec<String> = staging.backends().collect();
    assert_eq!(
        names,
        [
            "be_staging_api_blue",
            "be_staging_api_green",
            "be_staging_stream_blue",
            "be_staging_stream_green",
            "be_staging_web_blue",
            "be_staging_web_green",
        ]
    );
    let plain = vezasock::topology::Env {
        colored: false,
        ..staging
    };
    let names: Vec<String> = plain.backends().collect();
    assert_eq!(
        names,
        ["be_staging_api", "be_staging_stream", "be_staging_web"]
    );
}

// ---- no config line that means something else (issue 10) ----

#[test]
fn a_path_shadowed_by_an_earlier_component_names_both() {
    let text = edit(
        "[[component]]\nname = \"web\"",
        "[[component]]\nname = \"v2\"\npaths = [\"/api/v2\"]\nport = 8081\n\n[[component]]\nname = \"web\"",
    );
    let e = expect_one(&text, "component.v2.paths[0]", "\"/api/v2\"");
    assert!(e.message.contains("unreachable"), "{e}");
    assert!(e.message.contains("\"api\""), "names the earlier one: {e}");
    assert!(e.message.contains("\"v2\""), "names the shadowed one: {e}");
    assert!(e.message.contains("\"/api\""), "{e}");
    // The other order is fine: the more specific rule comes first.
    let fine = edit("paths = [\"/api\"]", "paths = [\"/api/v2\"]").replace(
        "[[component]]\nname = \"web\"",
        "[[component]]\nname = \"v1\"\npaths = [\"/api\"]\nport = 8081\n\n[[component]]\nname = \"web\"",
    );
    load(&fine).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_directory_rule_shadows_a_later_subdirectory_but_not_the_bare_path() {
    let with = |first: &str, second: &str| {
        edit("paths = [\"/api\"]", &format!("paths = [\"{first}\"]")).replace(
            "[[component]]\nname = \"web\"",
            &format!(
                "[[component]]\nname = \"two\"\npaths = [\"{second}\"]\nport = 8081\n\n[[component]]\nname = \"web\""
            ),
        )
    };
    expect_one(
        &with("/api/", "/api/v2"),
        "component.two.paths[0]",
        "\"/api/v2\"",
    );
    expect_one(
        &with("/api", "/api/"),
        "component.two.paths[0]",
        "\"/api/\"",
    );
    // `/api/` never matches the bare `/api`, so a later `/api` is reachable.
    load(&with("/api/", "/api")).unwrap_or_else(|e| panic!("{e}"));
    load(&with("/api", "/apiary")).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_path_under_the_acme_challenges_is_unreachable() {
    let text = edit(
        "paths = [\"/api\"]",
        "paths = [\"/.well-known/acme-challenge/x\"]",
    )
    .replace(
        "cookie = \"sid\"\n",
        "cookie = \"sid\"\n[acme]\nserver = \"127.0.0.1:8888\"\n",
    );
    let e = expect_one(
        &text,
        "component.api.paths[0]",
        "\"/.well-known/acme-challenge/x\"",
    );
    assert!(e.message.contains("ACME"), "{e}");
    // Without [acme] the path is an ordinary rule.
    load(&edit(
        "paths = [\"/api\"]",
        "paths = [\"/.well-known/acme-challenge/x\"]",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Each character HAProxy's config reads as syntax, in each kind of path that reaches it.
#[test]
fn paths_with_haproxy_syntax_are_refused() {
    for key in [
        "admin_socket",
        "operator_socket",
        "master_socket",
        "maps_dir",
        "server_state_file",
        "config",
    ] {
        for bad in [
            "$HOME", "${X}", "a,b", "a)b", "a(b", "a[b", "a]b", "a%b", "a`b",
        ] {
            let text = edit(
                "cookie = \"sid\"\n",
                &format!("cookie = \"sid\"\n[paths]\n{key} = \"/run/{bad}/x\"\n"),
            );
            let e = expect_one(&text, &format!("paths.{key}"), &format!("{key} ="));
            assert!(e.message.contains("in a path"), "{key} {bad}: {e}");
        }
    }
    let text = edit(
        "cookie = \"sid\"\n",
        "cookie = \"sid\"\n[tls]\ncerts_dir = \"/etc/ssl/$CERTS\"\n",
    );
    expect_one(&text, "tls.certs_dir", "certs_dir");
}

#[test]
fn path_overrides_with_haproxy_syntax_are_refused() {
    for bad in ["/etc/ha,proxy/maps", "/etc/haproxy/maps)", "/run/$USER"] {
        let mut t = load(BASE).unwrap_or_else(|e| panic!("{e}"));
        let err = t
            .override_paths(&PathOverrides {
                maps_dir: Some(bad.into()),
                ..PathOverrides::default()
            })
            .err()
            .map(|e| e.errors().to_vec())
            .unwrap_or_default();
        assert_eq!(err.len(), 1, "{bad}: {err:?}");
        assert_eq!(err[0].field, "paths.maps_dir");
    }
}

#[test]
fn timeouts_beyond_haproxy_timers_are_refused() {
    for (value, says) in [
        ("999999999s", "24.8 days"),
        ("25d", "24.8 days"),
        ("2147483648ms", "24.8 days"),
        ("0s", "zero"),
    ] {
        let text = edit(
            "cookie = \"sid\"\n",
            &format!("cookie = \"sid\"\n[timeouts]\ntunnel = \"{value}\"\n"),
        );
        let e = expect_one(&text, "timeouts.tunnel", value);
        assert!(e.message.contains(says), "{value}: {e}");
    }
    let text = edit(
        "cookie = \"sid\"\n",
        "cookie = \"sid\"\n[timeouts]\ntunnel = \"24d\"\nclient = \"2147483647ms\"\n",
    );
    let t = load(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.timeouts.tunnel, "24d");
}

#[test]
fn a_component_needs_no_port_when_every_env_lists_its_servers() {
    let text = edit("port = 8080\n", "").replace(
        "components = [\"api\", \"web\"]\n",
        "components = [\"api\", \"web\"]\n[env.servers.api]\nblue = [\"10.0.0.1:9000\"]\ngreen = [\"10.0.0.2:9000\"]\n",
    );
    let t = load(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.component("api").and_then(|c| c.port), None);
    let staging = t.env("staging").unwrap_or_else(|| panic!("no staging"));
    let api = &staging.components[0];
    assert_eq!(
        api.servers.of(Color::Blue)[0].address.to_string(),
        "10.0.0.1:9000"
    );
    // Without the explicit servers, the container-name default has no port to use.
    let missing = edit("port = 8080\n", "");
    let e = expect_one(&missing, "env.staging.servers.api", "name = \"staging\"");
    assert!(e.message.contains("no port"), "{e}");
}

#[test]
fn metrics_listen_defaults_to_loopback_and_is_validated() {
    assert_eq!(load(BASE).map(|t| t.metrics).ok(), Some(None));
    let on = format!("{BASE}\n[metrics]\n");
    let t = load(&on).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        t.metrics.map(|m| m.listen).as_deref(),
        Some("127.0.0.1:8405")
    );
    let set = format!("{BASE}\n[metrics]\nlisten = \"127.0.0.1:9101\"\n");
    let t = load(&set).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        t.metrics.map(|m| m.listen).as_deref(),
        Some("127.0.0.1:9101")
    );
    for bad in ["127.0.0.1", "127.0.0.1:99999", "a b:1", "127.0.0.1:80\\n"] {
        let text = format!("{BASE}\n[metrics]\nlisten = \"{bad}\"\n");
        expect_one(&text, "metrics.listen", "listen = ");
    }
    let typo = format!("{BASE}\n[metrics]\nlisen = \"127.0.0.1:9101\"\n");
    assert!(load(&typo).is_err());
}

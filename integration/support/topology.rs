//! A topology as the TOML file an operator would write (the tests write the edges they start
//! as topology files, so the binary reads them as it reads a user's).

use vezasock::topology::{Servers, Topology};

fn quoted(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", q.join(", "))
}

/// The topology as a TOML file (what an operator would write for this edge). Covers what the
/// embedded edge uses; `support::fresh` checks the file loads back to the same topology.
pub fn to_toml(t: &Topology) -> String {
    let mut out = format!(
        "name = {:?}\ncontainer_domain = {:?}\nfailover = {:?}\n\n[listen]\nhttp = {:?}\nhttps = {:?}\n\n",
        t.name,
        t.container_domain,
        t.failover.as_str(),
        t.listen.http,
        t.listen.https
    );
    if let Some(log) = &t.log {
        // Top-level key: before the first table.
        out = out.replacen("\n[listen]", &format!("log = {log:?}\n\n[listen]"), 1);
    }
    if let Some(tls) = &t.tls {
        out.push_str(&format!(
            "[tls]\ncerts_dir = {:?}\nredirect = {}\n\n",
            tls.certs_dir.display().to_string(),
            tls.redirect
        ));
    }
    if let Some(acme) = &t.acme {
        out.push_str(&format!(
            "[acme]\npath = {:?}\nserver = \"{}\"\n\n",
            acme.path, acme.server.address
        ));
    }
    let to = &t.timeouts;
    out.push_str(&format!(
        "[timeouts]\nconnect = {:?}\nclient = {:?}\nserver = {:?}\ntunnel = {:?}\nhttp_request = {:?}\ncheck = {:?}\n\n",
        to.connect, to.client, to.server, to.tunnel, to.http_request, to.check
    ));
    let p = &t.paths;
    out.push_str("[paths]\n");
    for (key, path) in [
        ("config", &p.config),
        ("maps_dir", &p.maps_dir),
        ("admin_socket", &p.admin_socket),
        ("operator_socket", &p.operator_socket),
        ("master_socket", &p.master_socket),
        ("server_state_file", &p.server_state_file),
        ("state_dir", &p.state_dir),
        ("haproxy", &p.haproxy),
        ("pid_file", &p.pid_file),
    ] {
        out.push_str(&format!("{key} = {:?}\n", path.display().to_string()));
    }
    out.push_str(&format!("reload_method = \"{}\"\n\n", p.reload_method));
    for c in &t.components {
        out.push_str(&format!(
            "[[component]]\nname = {:?}\npaths = {}\n{}http_no_delay = {}\n",
            c.name,
            quoted(&c.paths),
            c.port.map(|p| format!("port = {p}\n")).unwrap_or_default(),
            c.http_no_delay
        ));
        if let Some(check) = &c.check {
            out.push_str(&format!("check = {check:?}\n"));
        }
        out.push('\n');
    }
    for e in &t.envs {
        let cookie = e
            .cookie
            .strip_suffix(&format!("_{}", e.name))
            .unwrap_or(&e.cookie);
        let names: Vec<String> = e.components.iter().map(|c| c.name.clone()).collect();
        out.push_str(&format!(
            "[[env]]\nname = {:?}\nprefix = {:?}\nhosts = {}\ncookie = {cookie:?}\ncolors = {}\ncomponents = {}\n",
            e.name,
            e.prefix,
            quoted(&e.hosts),
            e.colored,
            quoted(&names)
        ));
        out.push_str("[env.servers]\n");
        let addrs = |s: &[vezasock::topology::Server]| -> Vec<String> {
            s.iter().map(|s| s.address.to_string()).collect()
        };
        for c in &e.components {
            let value = match &c.servers {
                Servers::Colored { blue, green } => format!(
                    "{{ blue = {}, green = {} }}",
                    quoted(&addrs(blue)),
                    quoted(&addrs(green))
                ),
                Servers::Pool(pool) => format!("{{ pool = {} }}", quoted(&addrs(pool))),
            };
            out.push_str(&format!("{} = {value}\n", c.name));
        }
        out.push('\n');
    }
    for x in &t.externals {
        let servers: Vec<String> = x.servers.iter().map(|s| s.address.to_string()).collect();
        out.push_str(&format!(
            "[[external]]\nname = {:?}\nhosts = {}\nservers = {}\n",
            x.name,
            quoted(&x.hosts),
            quoted(&servers)
        ));
        if let Some(check) = &x.check {
            out.push_str(&format!("check = {check:?}\n"));
        }
        out.push('\n');
    }
    out
}

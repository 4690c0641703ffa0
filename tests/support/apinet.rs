//! The API side of the end-to-end agent tests: an "api" namespace with a bridge (192.0.2.1/24)
//! and a separate link from every node namespace to it (`api0`, 192.0.2.10+n/24), so a node can
//! be cut from the API server while its LAN link stays up.
//!
//! kube-testserver only listens on 127.0.0.1, so it is started in-process on a runtime whose
//! threads all live in the api namespace, and a small TCP relay there forwards 192.0.2.1:PORT to
//! it. The test's own client (the test controller) also runs on that runtime: [`ApiNet::run`].

use std::future::Future;
use std::io;
use std::net::Ipv4Addr;
use std::path::Path;

use kube_testserver::TestServer;
use tokio::net::{TcpListener, TcpStream};

use super::netns::{Host, Netns, enter};

/// The API server's address as the nodes reach it.
pub const API_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Name of every node's API link.
pub const API_IF: &str = "api0";

/// The api namespace, the server and the relay.
pub struct ApiNet {
    pub ns: Netns,
    runtime: tokio::runtime::Runtime,
    server: TestServer,
    relay_port: u16,
}

impl ApiNet {
    /// Creates the api namespace, links `hosts` to it and starts the server and the relay.
    pub fn new(hosts: &[&Host]) -> io::Result<ApiNet> {
        let ns = Netns::new("api")?;
        ns.ip(&["link", "add", "brapi", "type", "bridge"])?;
        ns.ip(&["addr", "add", &format!("{API_IP}/24"), "dev", "brapi"])?;
        ns.ip(&["link", "set", "brapi", "up"])?;
        for (i, host) in hosts.iter().enumerate() {
            let port = format!("apiport{i}");
            ns.ip(&[
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                API_IF,
                "netns",
                &host.ns.name,
            ])?;
            ns.ip(&["link", "set", &port, "master", "brapi", "up"])?;
            let addr = Ipv4Addr::new(192, 0, 2, 10 + u8::try_from(i).unwrap_or(0));
            host.ns
                .ip(&["addr", "add", &format!("{addr}/24"), "dev", API_IF])?;
            host.ns.ip(&["link", "set", API_IF, "up"])?;
        }
        let name = ns.name.clone();
        // Every runtime thread (workers and blocking pool) enters the namespace when it starts,
        // so every socket the runtime's tasks open lives there.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .on_thread_start(move || {
                let _ = enter(&name);
            })
            .build()?;
        let (server, relay_port) = runtime
            .block_on(runtime.spawn(async {
                let server = TestServer::start().await?;
                let relay = TcpListener::bind((API_IP, 0)).await?;
                let relay_port = relay.local_addr()?.port();
                tokio::spawn(relay_to(relay, server.port()));
                io::Result::Ok((server, relay_port))
            }))
            .map_err(io::Error::other)??;
        Ok(ApiNet {
            ns,
            runtime,
            server,
            relay_port,
        })
    }

    /// Runs `f` to completion on a runtime thread inside the api namespace.
    pub fn run<F>(&self, f: F) -> io::Result<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime
            .block_on(self.runtime.spawn(f))
            .map_err(io::Error::other)
    }

    /// Starts `f` on the api runtime without waiting (join it with [`ApiNet::join`]).
    pub fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(f)
    }

    /// Waits for a task started with [`ApiNet::spawn`].
    pub fn join<T>(&self, task: tokio::task::JoinHandle<T>) -> io::Result<T> {
        self.runtime.block_on(task).map_err(io::Error::other)
    }

    /// A client for the test controller (use it inside [`ApiNet::run`]).
    pub fn client(&self) -> io::Result<kube::Client> {
        // The client spawns its request buffer onto the current runtime.
        let _inside = self.runtime.enter();
        self.server.client().map_err(io::Error::other)
    }

    /// Writes a kubeconfig that reaches the server from the node namespaces.
    pub fn write_node_kubeconfig(&self, path: &Path) -> io::Result<()> {
        self.write_node_kubeconfig_via(path, self.relay_port)
    }

    /// Writes a kubeconfig for the node namespaces that goes through another relay listening
    /// on [`API_IP`]:`port` in the api namespace (e.g. one recording requests).
    pub fn write_node_kubeconfig_via(&self, path: &Path, port: u16) -> io::Result<()> {
        let yaml = self
            .server
            .kubeconfig_yaml()
            .replace(&self.server.url(), &format!("http://{API_IP}:{port}"));
        std::fs::write(path, yaml)
    }

    /// The server's own port on 127.0.0.1 of the api namespace.
    pub fn server_port(&self) -> u16 {
        self.server.port()
    }

    /// The api runtime (for tasks that outlive one [`ApiNet::run`]).
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    /// Makes the API server answer 503 to everything for `duration` and drop its watches (an
    /// outage every node sees).
    pub fn outage(&self, duration: std::time::Duration) {
        self.server.faults().outage(duration);
    }

    /// Reconnects `host` to the API after [`ApiNet::cut`].
    pub fn reconnect(&self, host: &Host) -> io::Result<()> {
        host.ns.ip(&["link", "set", API_IF, "up"]).map(drop)
    }

    /// Cuts `host` from the API (its API link goes down; its LAN link stays up).
    pub fn cut(&self, host: &Host) -> io::Result<()> {
        host.ns.ip(&["link", "set", API_IF, "down"]).map(drop)
    }
}

async fn relay_to(listener: TcpListener, port: u16) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

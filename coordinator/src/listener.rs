//! The coordinator's side of TCP: connection caps, the handshake deadline and TLS, before tonic sees a connection.
//!
//! The store network is not trusted, so a connection is admitted only while
//! the coordinator holds fewer than [`ConnectionLimits::max_connections`]
//! (and its address fewer than `max_connections_per_address`); one over is
//! closed at once, so the client learns it straight away. An admitted
//! connection must finish its TLS handshake and send the HTTP/2 preface
//! within `handshake_timeout`, or it is closed: idle sockets cannot pile up
//! and take the file descriptors real lanes need.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tonic::transport::server::Connected;

/// How many connections the coordinator takes, and how quickly they must say something.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// From accept to the end of the TLS handshake and the HTTP/2 preface.
    pub handshake_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1024,
            max_connections_per_address: 64,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// The peer of a connection, in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddress(pub SocketAddr);

/// Raises the soft limit of open files to the hard limit, where the OS allows; returns the limit in force.
pub fn raise_open_file_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the limit of open files");
            rlimit::getrlimit(rlimit::Resource::NOFILE).ok().map(|(soft, _)| soft)
        }
    }
}

/// Connections held, in all and per address.
#[derive(Default)]
struct Held {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// A connection's place in the count; freed when the connection closes.
struct Slot {
    held: Arc<Mutex<Held>>,
    address: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.total = held.total.saturating_sub(1);
        if let Some(n) = held.per_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                held.per_address.remove(&self.address);
            }
        }
    }
}

fn take_slot(held: &Arc<Mutex<Held>>, address: IpAddr, limits: &ConnectionLimits) -> Option<Slot> {
    let mut counts = held.lock().unwrap_or_else(|p| p.into_inner());
    let of_address = counts.per_address.get(&address).copied().unwrap_or(0);
    if counts.total >= limits.max_connections || of_address >= limits.max_connections_per_address {
        return None;
    }
    counts.total += 1;
    *counts.per_address.entry(address).or_insert(0) += 1;
    Some(Slot { held: held.clone(), address })
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The HTTP/2 connection preface a client sends first (RFC 9113, 3.4).
const PREFACE_BYTES: usize = 24;

/// An admitted connection: its stream, its slot, and the deadline for its first bytes.
pub struct Admitted {
    stream: Stream,
    peer: SocketAddr,
    _slot: Slot,
    /// Until the preface has arrived: when to give up on it.
    preface_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    read_so_far: usize,
}

impl Connected for Admitted {
    type ConnectInfo = PeerAddress;

    fn connect_info(&self) -> PeerAddress {
        PeerAddress(self.peer)
    }
}

impl AsyncRead for Admitted {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = match &mut this.stream {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        if let Some(deadline) = &mut this.preface_deadline {
            this.read_so_far += buf.filled().len() - before;
            if this.read_so_far >= PREFACE_BYTES {
                this.preface_deadline = None;
            } else if read.is_pending() && deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "no HTTP/2 preface in time")));
            }
        }
        read
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, data),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().stream {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

use std::future::Future as _;

/// Accepts connections on `listener` within `limits` (TLS when `tls` is set) and hands them over,
/// handshaken, through the returned channel; the accept task ends when the channel's receiver is dropped.
pub fn admit_connections(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
) -> (mpsc::Receiver<Result<Admitted, io::Error>>, tokio::task::JoinHandle<()>) {
    let (admitted, receiver) = mpsc::channel(64);
    let task = tokio::spawn(async move {
        let held = Arc::new(Mutex::new(Held::default()));
        let mut refused_logged: Option<tokio::time::Instant> = None;
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, most likely: wait for some to be freed rather than spin.
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = admitted.closed() => return,
            };
            let Some(slot) = take_slot(&held, peer.ip(), &limits) else {
                if refused_logged.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                    refused_logged = Some(tokio::time::Instant::now());
                    tracing::warn!(%peer, max = limits.max_connections, per_address = limits.max_connections_per_address, "connection refused: too many connections");
                }
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let deadline = tokio::time::Instant::now() + limits.handshake_timeout;
            let preface_deadline = Some(Box::pin(tokio::time::sleep_until(deadline)));
            match &tls {
                None => {
                    let connection =
                        Admitted { stream: Stream::Plain(stream), peer, _slot: slot, preface_deadline, read_so_far: 0 };
                    if admitted.send(Ok(connection)).await.is_err() {
                        return;
                    }
                }
                Some(acceptor) => {
                    let (acceptor, admitted) = (acceptor.clone(), admitted.clone());
                    tokio::spawn(async move {
                        match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => {
                                let stream = Stream::Tls(Box::new(stream));
                                let connection =
                                    Admitted { stream, peer, _slot: slot, preface_deadline, read_so_far: 0 };
                                let _ = admitted.send(Ok(connection)).await;
                            }
                            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    });
                }
            }
        }
    });
    (receiver, task)
}

/// The server's TLS: its certificate chain and key, and when lanes must show certificates, the CA that signs them.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub certificate_chain_pem: String,
    pub private_key_pem: String,
    pub client_ca_pem: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("TLS configuration: {0}")]
pub struct TlsError(String);

/// A rustls acceptor for `files`, speaking HTTP/2 only.
pub fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let certificates: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(files.certificate_chain_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError(format!("the certificate file: {e}")))?;
    if certificates.is_empty() {
        return Err(TlsError("the certificate file holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(files.private_key_pem.as_bytes())
        .map_err(|e| TlsError(format!("the key file: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?;
    let builder = match &files.client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                let certificate = certificate.map_err(|e| TlsError(format!("the client CA file: {e}")))?;
                roots.add(certificate).map_err(|e| TlsError(format!("the client CA file: {e}")))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError(format!("the client CA file: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config =
        builder.with_single_cert(certificates, key).map_err(|e| TlsError(format!("certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

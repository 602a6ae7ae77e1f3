//! Errors at the binary's edge as one line: what failed, the address or path, what to do.

/// `e` and its causes as one line: empty messages and causes already quoted by the message
/// before them are left out, and known failures get a hint naming the flag that resolves them.
pub fn one_line(e: &anyhow::Error) -> String {
    for cause in e.chain() {
        if let Some(line) = with_hint(cause) {
            return line;
        }
    }
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        let msg = msg.trim();
        if msg.is_empty() || parts.last().is_some_and(|p| p.contains(msg)) {
            continue;
        }
        parts.push(msg.to_string());
    }
    if parts.is_empty() {
        return "failed without a reason".into();
    }
    parts.join(": ")
}

/// A failure whose own message says everything, completed with what to do.
fn with_hint(cause: &(dyn std::error::Error + 'static)) -> Option<String> {
    let in_use = |source: &std::io::Error| source.kind() == std::io::ErrorKind::AddrInUse;
    if let Some(skiff_apiserver::StartError::Listen { source, .. }) = cause.downcast_ref() {
        let hint = if in_use(source) {
            "is another skiff running? choose another with --listen"
        } else {
            "choose another with --listen"
        };
        return Some(format!("{cause} ({hint})"));
    }
    if let Some(skiff_agent::process::Error::Listen { source, .. }) = cause.downcast_ref() {
        let hint = if in_use(source) {
            "is another agent running? choose another with --kubelet-port"
        } else {
            "choose another with --node-ip or --kubelet-port"
        };
        return Some(format!("{cause} ({hint})"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Empty;
    impl std::fmt::Display for Empty {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            Ok(())
        }
    }
    impl std::error::Error for Empty {}

    #[test]
    fn causes_join_without_empty_or_repeated_parts() {
        let e = anyhow::Error::new(Empty).context("starting the cluster DNS");
        assert_eq!(one_line(&e), "starting the cluster DNS");
        let io = std::io::Error::other("disk full");
        let e = anyhow::anyhow!("writing x: disk full").context("starting");
        assert_eq!(one_line(&e), "starting: writing x: disk full");
        let e = anyhow::Error::new(io).context("writing x");
        assert_eq!(one_line(&e), "writing x: disk full");
    }

    #[test]
    fn a_port_in_use_names_the_flag() {
        let err = skiff_apiserver::StartError::Listen {
            addr: "127.0.0.1:6443".parse().unwrap(),
            source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };
        let e = anyhow::Error::new(err).context("starting the API server");
        assert_eq!(
            one_line(&e),
            "cannot listen on 127.0.0.1:6443: address already in use (is another skiff running? choose another with --listen)"
        );
    }
}

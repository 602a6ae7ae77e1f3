//! Controllers reconciling the cluster toward its desired state, on kube-runtime.

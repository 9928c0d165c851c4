# sudo as rolled out: administrators and the rollout account authenticate, the audit account runs the evidence collector only
rm -f /etc/sudoers.d/zz-scenario
restore /usr/local/libexec/dcops/collect-evidence

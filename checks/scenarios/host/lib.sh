# Shared header of the host scenarios (prepended to every *.pass.sh / *.fail.sh
# by checks/scenario_host.py; the scripts run as root inside the lab host).
# A fail scenario backs up every file it changes under $SCN; the pass scenario
# restores it, so "pass" means "the state the rollout made", and then makes
# the compliant state explicit where that is simple.
set -eu
SCN=/var/lib/dcops-scenario
backup() { mkdir -p "$SCN"; b="$SCN/$(printf %s "$1" | tr / _)"; [ -e "$b" ] || cp -a "$1" "$b"; }
restore() { b="$SCN/$(printf %s "$1" | tr / _)"; if [ -e "$b" ]; then cp -a "$b" "$1"; rm -f "$b"; fi; }
SSHD_SCN=/etc/ssh/sshd_config.d/00-dcops-scenario.conf  # read first: first value wins in sshd
# sshd re-executes itself on reload: wait until it listens again before anyone connects
sshd_reload() { /usr/sbin/sshd -t; systemctl reload ssh; sleep 0.5; for i in $(seq 1 40); do ss -Htln 'sport = :22' | grep -q . && return 0; sleep 0.25; done; return 1; }
sshd_set() { printf '%s\n' "$@" > "$SSHD_SCN"; chmod 0644 "$SSHD_SCN"; sshd_reload; }
sshd_clean() { rm -f "$SSHD_SCN"; sshd_reload; }
hub_tunnel() { sed -n 's/^AllowedIPs = //p' /etc/wireguard/wg0.conf | tr ',' '\n' | sed -n 's#^ *\(10\.[0-9.]*\)/32$#\1#p' | head -1; }
# The hub does not answer pings (its firewall drops them), but a packet into the tunnel
# makes WireGuard shake hands: send one, then wait for a handshake younger than a minute.
wait_handshake() {
  h=$(hub_tunnel)
  for i in $(seq 1 60); do
    ping -c1 -W1 "$h" >/dev/null 2>&1 || true
    t=$(wg show wg0 latest-handshakes 2>/dev/null | awk '{print $2}' | sort -n | tail -1)
    [ -n "$t" ] && [ "$t" -gt 0 ] && [ $(( $(date +%s) - t )) -lt 60 ] && return 0
    sleep 0.5
  done
  echo "no handshake with the hub ($h) within 60s" >&2; return 1
}

# the forwarding to the central log server is removed (on the hub: the receiving of the sites' logs)
for f in /etc/rsyslog.d/90-dcops-forward.conf /etc/rsyslog.d/10-dcops-receive.conf; do
  if [ -e "$f" ]; then backup "$f"; rm -f "$f"; fi
done
systemctl restart rsyslog

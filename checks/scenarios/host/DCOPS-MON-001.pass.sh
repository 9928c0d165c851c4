# node_exporter on the tunnel address only
restore /etc/default/prometheus-node-exporter; systemctl restart prometheus-node-exporter; for i in $(seq 1 40); do ss -Htln 'sport = :9100' | grep -q . && exit 0; sleep 0.25; done; exit 1

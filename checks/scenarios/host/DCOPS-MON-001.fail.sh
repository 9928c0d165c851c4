# node_exporter listens on every address
backup /etc/default/prometheus-node-exporter; echo 'ARGS="--web.listen-address=0.0.0.0:9100"' > /etc/default/prometheus-node-exporter; systemctl restart prometheus-node-exporter; for i in $(seq 1 40); do ss -Htln 'sport = :9100' | grep -vq '10\.200\.' && exit 0; sleep 0.25; done; exit 1

# node_exporter is stopped
systemctl stop prometheus-node-exporter

# the tunnel is up and has shaken hands
systemctl start wg-quick@wg0; wait_handshake; systemctl restart prometheus-node-exporter

# the private key is world-readable
chmod 0644 /etc/wireguard/private.key

# the private key is 0600
chmod 0600 /etc/wireguard/private.key; chmod 0700 /etc/wireguard

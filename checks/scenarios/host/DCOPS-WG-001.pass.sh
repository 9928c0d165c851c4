# the rolled-out tunnel
systemctl restart wg-quick@wg0; wait_handshake

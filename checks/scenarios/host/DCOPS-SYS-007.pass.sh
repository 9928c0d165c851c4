# net.ipv4.icmp_echo_ignore_broadcasts=1 (the hardened value)
sysctl -q -w net.ipv4.icmp_echo_ignore_broadcasts=1

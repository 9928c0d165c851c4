# net.ipv4.tcp_syncookies=1 (the hardened value)
sysctl -q -w net.ipv4.tcp_syncookies=1

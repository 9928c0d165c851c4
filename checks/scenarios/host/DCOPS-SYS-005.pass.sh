# net.ipv4.tcp_syncookies=1 (the hardened value)
# dcops-scenario: netns (net.* sysctls belong to the host's network namespace; /proc/sys is read-only inside the lab container)
sysctl -q -w net.ipv4.tcp_syncookies=1

# net.ipv4.conf.all.log_martians=0
# dcops-scenario: netns (net.* sysctls belong to the host's network namespace; /proc/sys is read-only inside the lab container)
sysctl -q -w net.ipv4.conf.all.log_martians=0

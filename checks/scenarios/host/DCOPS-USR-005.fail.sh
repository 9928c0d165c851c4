# sudo: a rule gives the rollout account every command without a password (NOPASSWD: ALL)
printf 'dcops ALL=(ALL:ALL) NOPASSWD: ALL\n' > /etc/sudoers.d/zz-scenario
chmod 0440 /etc/sudoers.d/zz-scenario
visudo -c >/dev/null

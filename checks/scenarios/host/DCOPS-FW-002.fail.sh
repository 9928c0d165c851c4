# forward policy switched to accept
nft 'chain inet dcops forward { policy accept; }'

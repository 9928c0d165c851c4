# input policy switched to accept
nft 'chain inet dcops input { policy accept; }'

#!/usr/bin/env bash
printf '#!/usr/bin/env bash\necho "hi $1"\n' > /app/greet.sh
chmod +x /app/greet.sh

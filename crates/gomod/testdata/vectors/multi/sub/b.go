package sub

import _ "embed"

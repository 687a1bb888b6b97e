// Real-world go.mod of gopkg.in/yaml.v3@v3.0.1, copied from the module cache.

module "gopkg.in/yaml.v3"

require (
	"gopkg.in/check.v1" v0.0.0-20161208181325-20d25e280405
)

package main

import (
	"flag"
	"os"
	"path/filepath"
	"runtime"
)

const configName = "integrasjonspunkt-local.properties"

// locations are where the config and the data live (operations.md §1.4).
type locations struct {
	config, data string
}

func (l *locations) flags(fs *flag.FlagSet) {
	fs.StringVar(&l.config, "config", l.config, "the properties `file` (Java integration point format)")
	fs.StringVar(&l.data, "data", l.data, "the data `dir`: store, queue, payloads, secrets")
}

// devLocations are the defaults of `run` without a service manager: the
// working directory, as the Java integration point beside its jar.
func devLocations() locations {
	l := locations{data: "."}
	if _, err := os.Stat(configName); err == nil {
		l.config = configName
	}
	return l
}

// serviceLocations are the defaults of an installed service.
func serviceLocations() locations {
	if runtime.GOOS == "windows" {
		pd := os.Getenv("ProgramData")
		if pd == "" {
			pd = `C:\ProgramData`
		}
		return locations{
			config: filepath.Join(pd, "integrasjonspunkt", "config", configName),
			data:   filepath.Join(pd, "integrasjonspunkt", "data"),
		}
	}
	return locations{config: "/etc/integrasjonspunkt/" + configName, data: "/var/lib/integrasjonspunkt"}
}

// abs makes both paths absolute: a service starts in system32 or /, never
// where the operator typed the command.
func (l locations) abs() (locations, error) {
	var err error
	if l.config != "" {
		if l.config, err = filepath.Abs(l.config); err != nil {
			return l, err
		}
	}
	l.data, err = filepath.Abs(l.data)
	return l, err
}

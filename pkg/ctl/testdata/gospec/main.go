// A tiny Go spec, as specs/* are: a main package that prints its objects as JSON.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

func main() {
	replicas := int32(2)
	objs := []v1.Object{
		&v1.Service{
			TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindService},
			Metadata: v1.ObjectMeta{Name: "hello"},
			Spec: v1.ServiceSpec{
				Image:    "hello:1",
				Replicas: &replicas,
				Ports:    []v1.ServicePort{{Name: "http", ContainerPort: 8080}},
				Routes:   &v1.Routes{HTTP: []v1.HTTPRoute{{Host: "hello.example.com"}}},
			},
		},
		&v1.Secret{
			TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindSecret},
			Metadata: v1.ObjectMeta{Name: "hello-db"},
			Spec:     v1.SecretSpec{Data: v1.SecretData{"password": "hunter2"}},
		},
	}
	enc := json.NewEncoder(os.Stdout)
	for _, o := range objs {
		if err := enc.Encode(o); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	fmt.Fprintln(os.Stderr, "gospec: printed 2 objects")
}

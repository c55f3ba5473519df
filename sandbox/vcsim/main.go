// vcsim: govmomi's vCenter simulator as a small binary, built offline by the sandbox
// from Debian's golang-github-vmware-govmomi-dev (which ships the library, no binary).
//
// Besides the vSphere API it serves POST /bakery/guest-ip?vm=<moref>&ip=<address>
// (same login, basic auth): the sandbox plays the guest's VMware Tools there, reporting
// the stand-in's address as the VM's guest.net and guest.ipAddress, which is what Packer
// and bakery wait for. vcsim's own `SET.guest.ipAddress` extraConfig fills guest.ipAddress
// but not guest.net's IP configuration, which govmomi's WaitForNetIP (Packer) reads.
//
// It listens on 127.0.0.1 only. The port comes from VCSIM_LISTEN (host:port) and the
// login from VCSIM_USERNAME / VCSIM_PASSWORD: environment, never argv, so the password
// does not show in `ps`. It prints the SDK URL (without the password) once it serves,
// then runs until SIGTERM or SIGINT.
package main

import (
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"

	// Their init functions register the lookup, PBM, STS and vAPI endpoints.
	_ "github.com/vmware/govmomi/lookup/simulator"
	_ "github.com/vmware/govmomi/pbm/simulator"
	_ "github.com/vmware/govmomi/sts/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator"
)

func main() {
	listen := os.Getenv("VCSIM_LISTEN")
	if listen == "" {
		listen = "127.0.0.1:8989"
	}
	if !strings.HasPrefix(listen, "127.") {
		log.Fatalf("VCSIM_LISTEN %q: vcsim listens on a 127.0.0.0/8 address only", listen)
	}
	username, password := os.Getenv("VCSIM_USERNAME"), os.Getenv("VCSIM_PASSWORD")
	if username == "" || password == "" {
		log.Fatal("VCSIM_USERNAME and VCSIM_PASSWORD must be set")
	}

	model := simulator.VPX()
	if err := model.Create(); err != nil {
		log.Fatalf("creating the vCenter inventory: %v", err)
	}
	defer model.Remove()

	model.Service.HandleFunc("/bakery/guest-ip", guestIPHandler(username, password))
	model.Service.Listen = &url.URL{Host: listen, User: url.UserPassword(username, password)}
	model.Service.TLS = new(tls.Config)
	model.Service.RegisterEndpoints = true
	server := model.Service.NewServer()
	defer server.Close()

	shown := *server.URL
	shown.User = nil
	fmt.Printf("vcsim serving %s\n", shown.String())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	fmt.Println("vcsim stopping")
}

// guestIPHandler reports `ip` as the guest address of VM `vm` on its first NIC, as
// VMware Tools would once the guest's network is up.
func guestIPHandler(username, password string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(username)) != 1 ||
			subtle.ConstantTimeCompare([]byte(pass), []byte(password)) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		moref, ip := r.URL.Query().Get("vm"), r.URL.Query().Get("ip")
		if net.ParseIP(ip) == nil {
			http.Error(w, "ip: not an IP address", http.StatusBadRequest)
			return
		}
		obj := simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: moref})
		vm, found := obj.(*simulator.VirtualMachine)
		if !found {
			http.Error(w, "no such VM", http.StatusNotFound)
			return
		}
		problem := ""
		simulator.Map.WithLock(vm, func() {
			if len(vm.Guest.Net) == 0 {
				problem = "the VM has no network adapter"
				return
			}
			nics := append([]types.GuestNicInfo(nil), vm.Guest.Net...)
			nics[0].IpAddress = []string{ip}
			nics[0].IpConfig = &types.NetIpConfigInfo{
				IpAddress: []types.NetIpConfigInfoIpAddress{{IpAddress: ip, PrefixLength: 24, State: "preferred"}},
			}
			simulator.Map.Update(vm, []types.PropertyChange{
				{Name: "guest.net", Val: nics},
				{Name: "guest.ipAddress", Val: ip},
				{Name: "summary.guest.ipAddress", Val: ip},
			})
		})
		if problem != "" {
			http.Error(w, problem, http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

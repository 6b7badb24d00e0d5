package sigma

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/crowsnest-siem/crowsnest/processor/normalize"
	"github.com/crowsnest-siem/crowsnest/schemas"
)

// TestSigmaHQAuditdRulesFire runs auditd events (testdata/auditd: one
// coalesced event per file, as collectors/auditd publishes it) through the
// auditd mapper and every loadable SigmaHQ Kubernetes and Linux rule, and
// checks exactly which rules fire. SigmaHQ writes its auditd rules against
// single records (`type: EXECVE` with `a0`, `type: PATH` with `nametype`);
// these prove they fire on the coalesced event, which is named after its
// SYSCALL record, and stay quiet on its benign twin.
func TestSigmaHQAuditdRulesFire(t *testing.T) {
	set := NewSet(compileCorpus(t))
	norm := testNormalizer(t)
	for _, tc := range []struct {
		file string
		want []string // rule ids, sorted
	}{
		// lnx_auditd_systemd_service_creation: PATH nametype CREATE under /etc/systemd/system/.
		{"systemd_unit_created.log", []string{"1bac86ba-41aa-4f62-9d6b-405eac99b485"}},
		{"tmp_file_created.log", nil},
		// lnx_auditd_disable_system_firewall: SERVICE_STOP unit firewalld.
		{"firewall_stopped.log", []string{"53059bc0-1472-438b-956a-7508a94a91f0"}},
		{"other_service_stopped.log", nil},
		// lnx_auditd_web_rce: execve with euid 33 (www-data). The command,
		// id, is also user discovery for lnx_auditd_user_discovery (9a0d8ca0,
		// `type: EXECVE` and `a0`) and proc_creation_lnx_local_account
		// (b45e3d6f, process_creation) whoever runs it.
		{"www_data_execve.log", []string{"9a0d8ca0-2385-4020-b6c6-cb6153ca56f3", "b45e3d6f-42c6-47d8-a478-df6bd6cf534c", "c0d3734d-330f-4a03-aae2-65dacc6a8222"}},
		{"user_execve.log", []string{"9a0d8ca0-2385-4020-b6c6-cb6153ca56f3", "b45e3d6f-42c6-47d8-a478-df6bd6cf534c"}},
		// lnx_auditd_susp_discovery_sysinfo_syscall: the sysinfo syscall; the
		// executable under /tmp is lnx_auditd_susp_exe_folders (a39d7fa7).
		{"sysinfo.log", []string{"a39d7fa7-3fbd-4dc2-97e1-d87f546b1bbc", "b207d563-a1d9-4275-b349-77d1eb55aa6d"}},
		// lnx_auditd_audio_capture: EXECVE a0 arecord a1 -vv a2 -fdat.
		{"arecord.log", []string{"a7af2487-9c2f-42e4-9bb9-ff961f0561d5"}},
		// lnx_auditd_clean_disable_dmesg_logs_via_syslog: syslog(2) with a0 5
		// (clear the ring buffer); a0 3 only reads it.
		{"dmesg_clear.log", []string{"eca5e022-d368-4043-98e5-9736fb01f72f"}},
		{"dmesg_read.log", nil},
	} {
		t.Run(strings.TrimSuffix(tc.file, ".log"), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "auditd", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var ev schemas.Event
			if err := norm.Normalize(&normalize.Record{Source: "auditd", Node: "node-1", Data: data}, &ev); err != nil {
				t.Fatalf("normalize: %v", err)
			}
			var got []string
			set.Match(&ev, func(c *Compiled) { got = append(got, c.Rule.ID) })
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("rules fired %v, want %v\nevent: %s", got, tc.want, ev.AppendJSON(nil))
			}
		})
	}
}

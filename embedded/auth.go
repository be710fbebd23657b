package embedded

import (
	"context"
	"errors"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/auth"
)

const rootUser = "root"

// setupAuth creates the root user and turns authentication on, once: a member
// restarted on its data dir, or a member of a cluster whose peer got there
// first, finds auth already enabled and leaves it be.
func (s *Server) setupAuth(ctx context.Context) error {
	srv := s.etcd.Server
	if s.cfg.rootPassword == "" || s.cfg.existing || s.cfg.skipAuthSetup || srv.AuthStore().IsAuthEnabled() {
		return nil
	}
	steps := []func() error{
		func() error {
			_, err := srv.UserAdd(ctx, &pb.AuthUserAddRequest{Name: rootUser, Password: s.cfg.rootPassword})
			return ignore(err, auth.ErrUserAlreadyExist)
		},
		func() error {
			_, err := srv.RoleAdd(ctx, &pb.AuthRoleAddRequest{Name: rootUser})
			return ignore(err, auth.ErrRoleAlreadyExist)
		},
		func() error {
			_, err := srv.UserGrantRole(ctx, &pb.AuthUserGrantRoleRequest{User: rootUser, Role: rootUser})
			return err
		},
		func() error {
			_, err := srv.AuthEnable(ctx, &pb.AuthEnableRequest{})
			return err
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			if srv.AuthStore().IsAuthEnabled() {
				// Another member of a cluster bootstrapped with the same
				// password finished first; our steps now lack permission.
				return nil
			}
			return fmt.Errorf("embedded: enable auth: %w", err)
		}
	}
	return nil
}

func ignore(err, want error) error {
	if errors.Is(err, want) {
		return nil
	}
	return err
}

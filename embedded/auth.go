package embedded

import (
	"context"
	"errors"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
)

const rootUser = "root"

// setupAuth creates the root user and turns authentication on, once: a member
// restarted on its data dir finds auth already enabled and leaves it be.
func (s *Server) setupAuth(ctx context.Context) error {
	if s.cfg.rootPassword == "" || s.cfg.existing || s.etcd.Server.AuthStore().IsAuthEnabled() {
		return nil
	}
	srv := s.etcd.Server
	steps := []func() error{
		func() error {
			_, err := srv.UserAdd(ctx, &pb.AuthUserAddRequest{Name: rootUser, Password: s.cfg.rootPassword})
			return ignore(err, rpctypes.ErrUserAlreadyExist)
		},
		func() error {
			_, err := srv.RoleAdd(ctx, &pb.AuthRoleAddRequest{Name: rootUser})
			return ignore(err, rpctypes.ErrRoleAlreadyExist)
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
			return fmt.Errorf("embedded: enable auth: %w", err)
		}
	}
	return nil
}

func ignore(err, want error) error {
	if err == nil || errors.Is(err, want) || err.Error() == want.Error() {
		return nil
	}
	return err
}

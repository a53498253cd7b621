// Hand-written types for the parts of fuse-native brickfs uses; only client/fuse/ imports it.
declare module 'fuse-native' {
  type Cb<T = void> = T extends void ? (err: number) => void : (err: number, value?: T) => void;

  export interface FuseStat {
    mode: number; uid: number; gid: number; size: number; dev?: number; nlink: number; ino?: number;
    rdev: number; blksize: number; blocks: number; atime: number; mtime: number; ctime: number;
  }

  export interface FuseStatfs {
    bsize: number; frsize: number; blocks: number; bfree: number; bavail: number;
    files: number; ffree: number; favail: number; fsid: number; flag: number; namemax: number;
  }

  export interface FuseOps {
    init?(cb: Cb): void;
    access?(path: string, mode: number, cb: Cb): void;
    statfs?(path: string, cb: (err: number, st?: FuseStatfs) => void): void;
    getattr?(path: string, cb: (err: number, st?: FuseStat) => void): void;
    fgetattr?(path: string, fd: number, cb: (err: number, st?: FuseStat) => void): void;
    flush?(path: string, fd: number, cb: Cb): void;
    fsync?(path: string, datasync: boolean, fd: number, cb: Cb): void;
    fsyncdir?(path: string, datasync: boolean, fd: number, cb: Cb): void;
    readdir?(path: string, cb: (err: number, names?: string[], stats?: FuseStat[]) => void): void;
    truncate?(path: string, size: number, cb: Cb): void;
    ftruncate?(path: string, fd: number, size: number, cb: Cb): void;
    utimens?(path: string, atime: number, mtime: number, cb: Cb): void;
    readlink?(path: string, cb: (err: number, target?: string) => void): void;
    chown?(path: string, uid: number, gid: number, cb: Cb): void;
    chmod?(path: string, mode: number, cb: Cb): void;
    mknod?(path: string, mode: number, dev: number, cb: Cb): void;
    setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Cb): void;
    getxattr?(path: string, name: string, position: number, cb: (err: number, value?: Buffer | null) => void): void;
    listxattr?(path: string, cb: (err: number, names?: string[]) => void): void;
    removexattr?(path: string, name: string, cb: Cb): void;
    open?(path: string, flags: number, cb: (err: number, fd?: number) => void): void;
    opendir?(path: string, flags: number, cb: (err: number, fd?: number) => void): void;
    read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void;
    write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (bytes: number) => void): void;
    release?(path: string, fd: number, cb: Cb): void;
    releasedir?(path: string, fd: number, cb: Cb): void;
    create?(path: string, mode: number, cb: (err: number, fd?: number) => void): void;
    unlink?(path: string, cb: Cb): void;
    rename?(src: string, dest: string, cb: Cb): void;
    link?(src: string, dest: string, cb: Cb): void;
    symlink?(src: string, dest: string, cb: Cb): void;
    mkdir?(path: string, mode: number, cb: Cb): void;
    rmdir?(path: string, cb: Cb): void;
  }

  export interface FuseOpts {
    force?: boolean; mkdir?: boolean; timeout?: number | false; debug?: boolean;
    allowOther?: boolean; allowRoot?: boolean; autoUnmount?: boolean; defaultPermissions?: boolean;
    fsname?: string; subtype?: string; maxRead?: number; kernelCache?: boolean; autoCache?: boolean;
    entryTimeout?: number; attrTimeout?: number; acAttrTimeout?: number; noforget?: boolean;
  }

  export default class Fuse {
    constructor(mnt: string, ops: FuseOps, opts?: FuseOpts);
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
  }
}

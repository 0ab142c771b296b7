"""Lets TorchSharp 0.107's native glue load on Debian 12 (tools/bench/side_by_side.py --peers torchsharp).

libLibTorchSharp.so of TorchSharp 0.107.0 is built with GCC 13 and asks libstdc++ for the symbol version
GLIBCXX_3.4.32, which Debian 12's libstdc++ (GCC 12: up to GLIBCXX_3.4.30) lacks, so the loader refuses it:

    libLibTorchSharp.so: /lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.32' not found

The only symbol of that version it names is std::ios_base_library_init(), which GCC 13's <iostream> references
(`.globl`) just to pull the standard streams' initialisation into a static link; no relocation of the library uses
it, so it is never bound (libtorch itself needs GLIBCXX_3.4.26 at most, and its own <iostream> objects initialise the
streams). This script marks that one version requirement weak (VER_FLG_WEAK in the Vernaux entry of
.gnu.version_r): glibc's loader then accepts a libstdc++ without it. It patches the copy in a build's output folder,
never the NuGet cache, only when the system libstdc++ lacks the version, and checks first that no relocation names
a symbol of the version it weakens.

    /usr/bin/python3 tools/bench/torchsharp_glibcxx.py bench/DitCache.Peers/bin/Release/net10.0/runtimes/linux-x64/native/libLibTorchSharp.so
"""
import struct
import sys

SYSTEM_LIBSTDCXX = "/lib/x86_64-linux-gnu/libstdc++.so.6"
VER_FLG_WEAK = 0x2
SHT_RELA, SHT_DYNSYM, SHT_GNU_VERSYM = 4, 11, 0x6FFFFFFF


def sections(data):
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    out = []
    for i in range(shnum):
        name, kind, _, _, offset, size, link, _, _, entsize = struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
        out.append({"name": name, "type": kind, "offset": offset, "size": size, "link": link, "entsize": entsize})
    names = out[shstrndx]
    for s in out:
        s["name"] = cstr(data, names["offset"] + s["name"])
    return out


def cstr(data, offset):
    return data[offset:data.index(b"\0", offset)].decode()


def missing_versions(data, system_libstdcxx):
    """(version name, vna_other, Vernaux offset) of each GLIBCXX/CXXABI version the file needs that the system lacks."""
    with open(system_libstdcxx, "rb") as f:
        system = f.read()
    secs = sections(data)
    verneed = next(s for s in secs if s["name"] == ".gnu.version_r")
    strtab = secs[verneed["link"]]["offset"]
    found, offset = [], verneed["offset"]
    while True:
        _, count, file_name, aux, nxt = struct.unpack_from("<HHIII", data, offset)
        if cstr(data, strtab + file_name).startswith("libstdc++"):
            a = offset + aux
            for _ in range(count):
                _, _, other, name, anext = struct.unpack_from("<IHHII", data, a)
                version = cstr(data, strtab + name)
                if (version + "\0").encode() not in system:
                    found.append((version, other, a))
                a += anext
        if nxt == 0:
            return found
        offset += nxt


def relocated_symbol_versions(data):
    """The version indices (vna_other) of every dynamic symbol a relocation names."""
    secs = sections(data)
    versym = next(s for s in secs if s["type"] == SHT_GNU_VERSYM)
    used = set()
    for s in secs:
        if s["type"] == SHT_RELA and secs[s["link"]]["type"] == SHT_DYNSYM:
            for k in range(s["size"] // 24):
                _, info, _ = struct.unpack_from("<QQq", data, s["offset"] + 24 * k)
                sym = info >> 32
                if sym:
                    used.add(struct.unpack_from("<H", data, versym["offset"] + 2 * sym)[0] & 0x7FFF)
    return used


def patch(path, system_libstdcxx=SYSTEM_LIBSTDCXX):
    """Marks weak the libstdc++ versions that `path` needs and the system lacks; returns their names."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    missing = missing_versions(data, system_libstdcxx)
    if not missing:
        return []
    used = relocated_symbol_versions(data)
    for version, other, _ in missing:
        if other in used:
            raise SystemExit(f"torchsharp_glibcxx.py: {path} binds a symbol of {version}, which {system_libstdcxx} "
                             "lacks: marking it weak would not help; install a libstdc++ of GCC 13 or newer")
    for _, _, aux in missing:
        flags, = struct.unpack_from("<H", data, aux + 4)
        struct.pack_into("<H", data, aux + 4, flags | VER_FLG_WEAK)
    with open(path, "wb") as f:
        f.write(data)
    return [v for v, _, _ in missing]


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: torchsharp_glibcxx.py PATH/libLibTorchSharp.so (the copy in a build's output folder)")
    done = patch(sys.argv[1])
    print(f"{sys.argv[1]}: " + (f"marked weak: {', '.join(done)}" if done else "nothing to do (the system libstdc++ has every version it needs)"))


if __name__ == "__main__":
    main()

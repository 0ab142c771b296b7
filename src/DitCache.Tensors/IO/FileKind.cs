using System;
using System.Runtime.InteropServices;

namespace DitCache.Tensors.IO;

/// <summary>
/// What a path names on Linux, from <c>stat(2)</c>: a regular file, a directory, or something else (a character
/// device such as <c>/dev/null</c> or <c>/dev/stdout</c>, a FIFO, a socket). .NET's <see cref="System.IO.File"/>
/// calls report all of the last kind as files, and renaming a temporary file over one would replace the device node.
/// </summary>
public static unsafe class FileKind
{
    private const uint TypeMask = 0xF000, Regular = 0x8000, Directory = 0x4000;

    private static readonly delegate* unmanaged<byte*, byte*, int> s_stat = Load();

    /// <summary>
    /// Whether <paramref name="path"/> exists and is neither a regular file nor a directory (links followed). False
    /// where <c>stat</c> cannot be called (not Linux on x64 or arm64): there the caller keeps its regular-file path.
    /// </summary>
    public static bool IsSpecial(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (s_stat == null)
        {
            return false;
        }

        int offset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 24 : 16;   // st_mode in struct stat
        byte[] name = System.Text.Encoding.UTF8.GetBytes(path + "\0");
        byte* buffer = stackalloc byte[256];                                                  // sizeof(struct stat) is 128 or 144
        fixed (byte* p = name)
        {
            if (s_stat(p, buffer) != 0)
            {
                return false;                                                                 // missing: a new regular file
            }
        }

        uint mode = *(uint*)(buffer + offset) & TypeMask;
        return mode != Regular && mode != Directory;
    }

    private static delegate* unmanaged<byte*, byte*, int> Load()
    {
        bool supported = OperatingSystem.IsLinux()
            && RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64;
        // glibc 2.33 and later export stat itself (Debian 12 has 2.36).
        return supported && NativeLibrary.TryLoad("libc.so.6", out IntPtr libc) && NativeLibrary.TryGetExport(libc, "stat", out IntPtr stat)
            ? (delegate* unmanaged<byte*, byte*, int>)stat
            : null;
    }
}

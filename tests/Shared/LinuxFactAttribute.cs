using System;
using Xunit;

namespace DitCache.Tests;

/// <summary>A fact that needs Linux (/dev/null, /proc/cpuinfo, stat(2)): reported as skipped on other systems.</summary>
public sealed class LinuxFactAttribute : FactAttribute
{
    public LinuxFactAttribute()
    {
        if (!OperatingSystem.IsLinux())
        {
            Skip = "needs Linux (/dev/null, /proc/cpuinfo, stat(2))";
        }
    }
}

using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Numerics;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace DitCache.Tensors.IO;

/// <summary>
/// A restricted unpickler for the <c>data.pkl</c> that <c>torch.save</c> writes (pickle protocol 2; FRAME and
/// MEMOIZE of protocol 4 are accepted too). It interprets pickle as plain data and never runs code: a GLOBAL is
/// resolved against a fixed allowlist to an inert marker, and REDUCE/NEWOBJ on a marker builds one of the few
/// value types below. Tensors are not read here: <c>_rebuild_tensor_v2</c> yields a <see cref="TensorRef"/>
/// (storage key, offset, size, stride), and the caller reads the storage bytes only for the tensors it keeps.
/// </summary>
/// <remarks>
/// Two dialects: the zip format's <c>data.pkl</c>, given as a byte array (<see cref="Load"/>), and the consecutive
/// pickles at the start of a legacy (pre-1.6) <c>torch.save</c> file, read from the file on demand
/// (<see cref="OpenLegacy"/>, then <see cref="Next"/> once per pickle). The legacy dialect differs in its persistent
/// ids, <c>('storage', type, root_key, location, numel, view_metadata)</c>, and admits the 10-byte LONG1 of the
/// magic number.
/// </remarks>
internal sealed class TorchPickle
{
    // Opcodes (Lib/pickle.py names), only those a state_dict, an optimizer state_dict or train.py args need.
    private const byte Mark = (byte)'(';
    private const byte Stop = (byte)'.';
    private const byte Pop = (byte)'0';
    private const byte PopMark = (byte)'1';
    private const byte BinInt = (byte)'J';
    private const byte BinInt1 = (byte)'K';
    private const byte BinInt2 = (byte)'M';
    private const byte None = (byte)'N';
    private const byte BinPersId = (byte)'Q';
    private const byte Reduce = (byte)'R';
    private const byte BinUnicode = (byte)'X';
    private const byte Append = (byte)'a';
    private const byte Build = (byte)'b';
    private const byte Global = (byte)'c';
    private const byte Appends = (byte)'e';
    private const byte BinGet = (byte)'h';
    private const byte LongBinGet = (byte)'j';
    private const byte BinPut = (byte)'q';
    private const byte LongBinPut = (byte)'r';
    private const byte SetItem = (byte)'s';
    private const byte Tuple = (byte)'t';
    private const byte SetItems = (byte)'u';
    private const byte BinFloat = (byte)'G';
    private const byte EmptyDict = (byte)'}';
    private const byte EmptyList = (byte)']';
    private const byte EmptyTuple = (byte)')';
    private const byte Proto = 0x80;
    private const byte NewObj = 0x81;
    private const byte Tuple1 = 0x85;
    private const byte Tuple2 = 0x86;
    private const byte Tuple3 = 0x87;
    private const byte NewTrue = 0x88;
    private const byte NewFalse = 0x89;
    private const byte Long1 = 0x8a;
    private const byte ShortBinUnicode = 0x8c;
    private const byte BinUnicode8 = 0x8d;
    private const byte StackGlobal = 0x93;
    private const byte Memoize = 0x94;
    private const byte Frame = 0x95;

    /// <summary>
    /// The only globals a pickle may name. Storage classes appear inside persistent ids; those without a
    /// <see cref="StoredDType"/> are accepted so an optimizer's int64 step counter can sit in a subtree we skip,
    /// and refused when a kept tensor uses them. <c>argparse.Namespace</c> is the <c>args</c> entry of DiT's
    /// train.py checkpoints; it becomes an inert <see cref="Opaque"/> and its constructor is never called.
    /// </summary>
    private static readonly Dictionary<string, object> s_allowed = new(StringComparer.Ordinal)
    {
        ["collections.OrderedDict"] = new Callable("collections.OrderedDict"),
        ["torch._utils._rebuild_tensor_v2"] = new Callable("torch._utils._rebuild_tensor_v2"),
        ["torch._utils._rebuild_parameter"] = new Callable("torch._utils._rebuild_parameter"),
        ["argparse.Namespace"] = new Callable("argparse.Namespace"),
        ["torch.FloatStorage"] = new StorageType("torch.FloatStorage", StoredDType.F32, 4),
        ["torch.HalfStorage"] = new StorageType("torch.HalfStorage", StoredDType.F16, 2),
        ["torch.BFloat16Storage"] = new StorageType("torch.BFloat16Storage", StoredDType.BF16, 2),
        ["torch.DoubleStorage"] = new StorageType("torch.DoubleStorage", null, 8),
        ["torch.LongStorage"] = new StorageType("torch.LongStorage", null, 8),
        ["torch.IntStorage"] = new StorageType("torch.IntStorage", null, 4),
        ["torch.ShortStorage"] = new StorageType("torch.ShortStorage", null, 2),
        ["torch.CharStorage"] = new StorageType("torch.CharStorage", null, 1),
        ["torch.ByteStorage"] = new StorageType("torch.ByteStorage", null, 1),
        ["torch.BoolStorage"] = new StorageType("torch.BoolStorage", null, 1),
    };

    /// <summary>
    /// Most values the machine may create, hold on its stack or in its memo. DiT-XL/2's state_dict makes about
    /// 10,000; a train.py checkpoint with optimizer state about four times that.
    /// </summary>
    private const int MaxValues = 1 << 21;

    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly string _source;
    private int _created;
    private byte[] _data;
    private int _count;                          // valid bytes in _data (all of it in the zip dialect)
    private readonly SafeFileHandle? _file;      // legacy dialect: _data is the file's first _count bytes
    private readonly long _fileLength, _maxBytes;
    private readonly List<object?> _stack = [];
    private readonly Stack<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = [];
    private readonly Dictionary<string, StorageRef> _storages = new(StringComparer.Ordinal);
    private int _pos;

    private TorchPickle(string source, byte[] data)
    {
        _source = source;
        _data = data;
        _count = data.Length;
    }

    private TorchPickle(string source, SafeFileHandle file, long fileLength, long maxBytes)
    {
        _source = source;
        _data = [];
        _file = file;
        _fileLength = fileLength;
        _maxBytes = Math.Min(maxBytes, Array.MaxLength);
    }

    /// <summary>Interprets <paramref name="data"/>; <paramref name="source"/> names it in messages.</summary>
    /// <exception cref="DitCacheException">The pickle is malformed or names a global outside the allowlist.</exception>
    public static object? Load(string source, byte[] data) => new TorchPickle(source, data).Run();

    /// <summary>
    /// A reader of the consecutive pickles that start a legacy <c>torch.save</c> file of <paramref name="length"/>
    /// bytes; it reads the file from byte 0 in growing pieces as the pickles need them, at most
    /// <paramref name="maxBytes"/> bytes in all.
    /// </summary>
    public static TorchPickle OpenLegacy(string path, SafeFileHandle handle, long length, long maxBytes) =>
        new(path, handle, length, maxBytes);

    /// <summary>The file offset just past the last pickle <see cref="Next"/> read.</summary>
    public long Position => _pos;

    /// <summary>Every storage a persistent id named so far (legacy dialect), by root key.</summary>
    public IReadOnlyDictionary<string, StorageRef> Storages => _storages;

    /// <summary>Interprets the next pickle of a legacy file (its own memo, as <c>pickle.load</c> gives each).</summary>
    /// <exception cref="DitCacheException">The pickle is malformed, truncated or names a global outside the allowlist.</exception>
    public object? Next()
    {
        _stack.Clear();
        _marks.Clear();
        _memo.Clear();
        return Run();
    }

    private bool Legacy => _file is not null;

    private object? Run()
    {
        while (true)
        {
            int at = _pos;
            byte op = ReadByte();
            switch (op)
            {
                case Proto:
                    byte version = ReadByte();
                    if (version > 5)
                    {
                        throw Bad(at, $"pickle protocol {version} is newer than any Python writes (expected 2)");
                    }

                    break;
                case Frame:
                    Take(8); // a length hint only; the frame's opcodes follow inline
                    break;
                case Stop:
                    if (_stack.Count != 1 || _marks.Count != 0)
                    {
                        throw Bad(at, $"STOP with {_stack.Count} values on the stack (expected 1)");
                    }

                    return _stack[0];
                case Mark:
                    if (_marks.Count >= MaxValues)
                    {
                        throw Bad(at, $"more than {MaxValues} nested MARKs");
                    }

                    _marks.Push(_stack.Count);
                    break;
                case Pop:
                    PopValue(at);
                    break;
                case PopMark:
                    PopToMark(at);
                    break;
                case EmptyDict:
                    Push(at, new PickleDict());
                    break;
                case EmptyList:
                    Push(at, new List<object?>());
                    break;
                case EmptyTuple:
                    Push(at, Array.Empty<object?>());
                    break;
                case None:
                    Push(at, null);
                    break;
                case NewTrue:
                    Push(at, true);
                    break;
                case NewFalse:
                    Push(at, false);
                    break;
                case BinInt:
                    Push(at, (long)BinaryPrimitives.ReadInt32LittleEndian(Take(4)));
                    break;
                case BinInt1:
                    Push(at, (long)ReadByte());
                    break;
                case BinInt2:
                    Push(at, (long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2)));
                    break;
                case Long1:
                    Push(at, ReadLong1(at));
                    break;
                case BinFloat:
                    Push(at, BinaryPrimitives.ReadDoubleBigEndian(Take(8)));
                    break;
                case ShortBinUnicode:
                    Push(at, ReadString(at, ReadByte()));
                    break;
                case BinUnicode:
                    Push(at, ReadString(at, BinaryPrimitives.ReadUInt32LittleEndian(Take(4))));
                    break;
                case BinUnicode8:
                    Push(at, ReadString(at, BinaryPrimitives.ReadUInt64LittleEndian(Take(8))));
                    break;
                case Tuple:
                    Push(at, PopToMark(at));
                    break;
                case Tuple1:
                case Tuple2:
                case Tuple3:
                    int n = op - Tuple1 + 1;
                    if (_stack.Count - StackFloor() < n)
                    {
                        throw Bad(at, $"TUPLE{n} needs {n} values on the stack");
                    }

                    object?[] items = _stack.GetRange(_stack.Count - n, n).ToArray();
                    _stack.RemoveRange(_stack.Count - n, n);
                    Push(at, items);
                    break;
                case BinPut:
                    Remember(at, ReadByte());
                    break;
                case LongBinPut:
                    Remember(at, BinaryPrimitives.ReadUInt32LittleEndian(Take(4)));
                    break;
                case Memoize:
                    Remember(at, _memo.Count);
                    break;
                case BinGet:
                    Push(at, GetMemo(at, ReadByte()));
                    break;
                case LongBinGet:
                    Push(at, GetMemo(at, BinaryPrimitives.ReadUInt32LittleEndian(Take(4))));
                    break;
                case SetItem:
                    {
                        object? value = PopValue(at);
                        object? key = PopValue(at);
                        As<PickleDict>(at, Peek(at), "SETITEM target").Set(key, value);
                        break;
                    }

                case SetItems:
                    {
                        object?[] kv = PopToMark(at);
                        PickleDict dict = As<PickleDict>(at, Peek(at), "SETITEMS target");
                        if (kv.Length % 2 != 0)
                        {
                            throw Bad(at, $"SETITEMS with an odd number ({kv.Length}) of keys and values");
                        }

                        for (int i = 0; i < kv.Length; i += 2)
                        {
                            dict.Set(kv[i], kv[i + 1]);
                        }

                        break;
                    }

                case Append:
                    {
                        object? value = PopValue(at);
                        As<List<object?>>(at, Peek(at), "APPEND target").Add(value);
                        break;
                    }

                case Appends:
                    {
                        object?[] values = PopToMark(at);
                        As<List<object?>>(at, Peek(at), "APPENDS target").AddRange(values);
                        break;
                    }

                case Global:
                    {
                        string module = ReadLine(at);
                        string name = ReadLine(at);
                        Push(at, Resolve(module, name));
                        break;
                    }

                case StackGlobal:
                    {
                        string name = As<string>(at, PopValue(at), "STACK_GLOBAL name");
                        string module = As<string>(at, PopValue(at), "STACK_GLOBAL module");
                        Push(at, Resolve(module, name));
                        break;
                    }

                case Reduce:
                    {
                        object?[] args = As<object?[]>(at, PopValue(at), "REDUCE arguments");
                        object? callable = PopValue(at);
                        Push(at, Call(at, callable, args));
                        break;
                    }

                case NewObj:
                    {
                        object?[] args = As<object?[]>(at, PopValue(at), "NEWOBJ arguments");
                        Callable cls = As<Callable>(at, PopValue(at), "NEWOBJ class");
                        if (cls.Name != "argparse.Namespace")
                        {
                            throw Bad(at, $"NEWOBJ of '{cls.Name}', which is not a class");
                        }

                        Push(at, new Opaque(cls.Name));
                        break;
                    }

                case Build:
                    {
                        object? state = PopValue(at);
                        object? target = Peek(at);

                        // OrderedDict from Module.state_dict() carries `_metadata` (per-module versions) as an
                        // attribute, and Namespace its fields: both are ignored, neither affects the weights.
                        if (target is not (PickleDict or Opaque) || state is not (PickleDict or null))
                        {
                            throw Bad(at, $"BUILD of {Describe(target)} with {Describe(state)}, which a state_dict never needs");
                        }

                        break;
                    }

                case BinPersId:
                    Push(at, PersistentLoad(at, PopValue(at)));
                    break;
                default:
                    throw Bad(at, $"opcode 0x{op:x2} is not one a torch.save state_dict uses");
            }
        }
    }

    private object Resolve(string module, string name)
    {
        string full = module + "." + name;
        if (s_allowed.TryGetValue(full, out object? value))
        {
            return value;
        }

        throw new DitCacheException(
            $"{_source}: pickle refers to global '{TensorFile.Printable(full)}', which a state_dict never needs; DitCache refuses to load it (no code is run). " +
            "If you trust the file, load it in Python and save only the weights: torch.save(model.state_dict(), 'weights.pt')");
    }

    private object Call(int at, object? callable, object?[] args)
    {
        Callable fn = callable as Callable ?? throw Bad(at, $"REDUCE calls {Describe(callable)}, which is not callable");
        switch (fn.Name)
        {
            case "collections.OrderedDict":
                if (args.Length != 0)
                {
                    throw Bad(at, $"OrderedDict called with {args.Length} arguments (pickle passes none)");
                }

                return new PickleDict();
            case "torch._utils._rebuild_tensor_v2":
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                if (args.Length is not (6 or 7))
                {
                    throw Bad(at, $"_rebuild_tensor_v2 called with {args.Length} arguments (expected 6 or 7)");
                }

                return new TensorRef(
                    As<StorageRef>(at, args[0], "_rebuild_tensor_v2 storage"),
                    As<long>(at, args[1], "_rebuild_tensor_v2 storage_offset"),
                    Longs(at, args[2], "_rebuild_tensor_v2 size"),
                    Longs(at, args[3], "_rebuild_tensor_v2 stride"));
            case "torch._utils._rebuild_parameter":
                // (data, requires_grad, backward_hooks): an nn.Parameter is its tensor for our purposes.
                if (args.Length != 3)
                {
                    throw Bad(at, $"_rebuild_parameter called with {args.Length} arguments (expected 3)");
                }

                return As<TensorRef>(at, args[0], "_rebuild_parameter data");
            case "argparse.Namespace":
                return new Opaque(fn.Name);
            default:
                throw Bad(at, $"REDUCE calls '{fn.Name}'");
        }
    }

    private StorageRef PersistentLoad(int at, object? pid)
    {
        // torch/serialization.py persistent_id: ('storage', storage_type, key, location, numel), the same in
        // torch 1.6 through 2.x for typed storages; _legacy_save appends view_metadata, None or
        // (view_key, offset, size) in elements of the root storage (None from torch 1.0 on).
        object?[] t = As<object?[]>(at, pid, "persistent id");
        int fields = Legacy ? 6 : 5;
        if (t.Length != fields || t[0] is not "storage")
        {
            throw Bad(at, Legacy
                ? $"persistent id {Describe(pid)} is not ('storage', type, root_key, location, numel, view_metadata)"
                : $"persistent id {Describe(pid)} is not ('storage', type, key, location, numel)");
        }

        StorageType type = t[1] as StorageType
            ?? throw Bad(at, $"persistent id names {Describe(t[1])} where a torch.*Storage class belongs");
        var storage = new StorageRef(
            As<string>(at, t[2], "storage key"), type, As<string>(at, t[3], "storage location"), As<long>(at, t[4], "storage numel"));
        if (!Legacy)
        {
            return storage;
        }

        if (_storages.TryGetValue(storage.Key, out StorageRef? seen) && (seen.Type != storage.Type || seen.Numel != storage.Numel))
        {
            throw Bad(at, $"storage '{TensorFile.Printable(storage.Key)}' is declared as {seen.Numel} × {seen.Type.Name} and again as {storage.Numel} × {storage.Type.Name}");
        }

        _storages[storage.Key] = storage;
        if (t[5] is null)
        {
            return storage;
        }

        object?[] view = As<object?[]>(at, t[5], "storage view_metadata");
        if (view.Length != 3)
        {
            throw Bad(at, $"storage view_metadata {Describe(t[5])} is not (view_key, offset, size)");
        }

        _ = As<string>(at, view[0], "storage view key");
        long offset = As<long>(at, view[1], "storage view offset");
        long size = As<long>(at, view[2], "storage view size");
        if (offset < 0 || size < 0 || storage.Numel < 0 || offset > storage.Numel - size)
        {
            throw Bad(at, $"storage view [{offset}, +{size}) of storage '{TensorFile.Printable(storage.Key)}' lies outside its {storage.Numel} elements");
        }

        return storage with { ViewOffset = offset, ViewNumel = size };
    }

    private object ReadLong1(int at)
    {
        int n = ReadByte();
        if (n > 8)
        {
            // The legacy format's first pickle is its 10-byte magic number; nothing else is that large.
            if (!Legacy || n > 16)
            {
                throw Bad(at, $"LONG1 integer of {n} bytes is larger than a state_dict ever stores");
            }

            return new BigInteger(Take(n), isUnsigned: false, isBigEndian: false);
        }

        ReadOnlySpan<byte> b = Take(n);
        long v = 0;
        for (int i = n - 1; i >= 0; i--)
        {
            v = (v << 8) | b[i];
        }

        if (n is > 0 and < 8 && (b[n - 1] & 0x80) != 0)
        {
            v -= 1L << (8 * n); // two's complement sign
        }

        return v;
    }

    private string ReadString(int at, ulong length)
    {
        if (length > (ulong)(_count - _pos) && (length > int.MaxValue || !Fill((int)length)))
        {
            if (Legacy)
            {
                throw Truncated(at, (long)Math.Min(length, long.MaxValue / 2) + _pos);
            }

            throw Bad(at, $"string of {length} bytes runs past the end of the pickle");
        }

        return Decode(at, Take((int)length), "a string");
    }

    private string ReadLine(int at)
    {
        int end;
        while ((end = _data.AsSpan(_pos, _count - _pos).IndexOf((byte)'\n')) < 0)
        {
            if (!Fill(_count - _pos + 1))
            {
                throw Legacy ? Truncated(at, _count + 1L) : Bad(at, "GLOBAL name is not terminated by a newline");
            }
        }

        string s = Decode(at, _data.AsSpan(_pos, end), "a GLOBAL name");
        _pos += end + 1;
        return s;
    }

    private byte ReadByte() => Take(1)[0];

    private ReadOnlySpan<byte> Take(int n)
    {
        if (n > _count - _pos && !Fill(n))
        {
            throw Legacy ? Truncated(_pos, (long)_pos + n) : Bad(_pos, "the pickle ends early (truncated data.pkl)");
        }

        ReadOnlySpan<byte> s = _data.AsSpan(_pos, n);
        _pos += n;
        return s;
    }

    /// <summary>
    /// Legacy dialect: makes at least <paramref name="needed"/> bytes from <see cref="_pos"/> available, reading the
    /// file on (at least doubling what is held, so a long pickle costs few reads); false if the file or the
    /// byte limit ends first. The zip dialect holds its whole pickle and always answers false.
    /// </summary>
    private bool Fill(int needed)
    {
        long want = (long)_pos + needed;
        long cap = Math.Min(_fileLength, _maxBytes);
        if (_file is null || want > cap)
        {
            return false;
        }

        long target = Math.Min(cap, Math.Max(want, Math.Max(2L * _count, 4096)));
        if (target > _data.Length)
        {
            Array.Resize(ref _data, (int)target);
        }

        FileAccessor.ReadExactly(_file, _source, _count, _data.AsSpan(_count, (int)(target - _count)));
        _count = (int)target;
        return true;
    }

    private DitCacheException Truncated(int at, long want) => want <= _fileLength
        ? new($"{_source}: the pickles before the tensor data run past byte {_maxBytes}, more than any state_dict needs (file byte {at}); the file is corrupt or not a torch.save state_dict")
        : new($"{_source}: the file ends at byte {_fileLength}, inside a pickle (file byte {at}); the file is truncated, download or save it again");

    private void Push(int at, object? value)
    {
        if (++_created > MaxValues || _stack.Count >= MaxValues)
        {
            throw Bad(at, $"the pickle builds more than {MaxValues} values, far more than any state_dict");
        }

        _stack.Add(value);
    }

    private void Remember(int at, long index)
    {
        object? value = Peek(at);
        if (_memo.Count >= MaxValues && !_memo.ContainsKey(index))
        {
            throw Bad(at, $"the pickle memo grows past {MaxValues} entries, far more than any state_dict");
        }

        _memo[index] = value;
    }

    private string Decode(int at, ReadOnlySpan<byte> bytes, string what)
    {
        try
        {
            return s_strictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Bad(at, $"{what} is not valid UTF-8 (Python writes strings as UTF-8; a lone surrogate cannot be a tensor name)");
        }
    }

    private int StackFloor() => _marks.Count > 0 ? _marks.Peek() : 0;

    private object? Peek(int at) =>
        _stack.Count > StackFloor() ? _stack[^1] : throw Bad(at, "an opcode needs a value but the stack is empty");

    private object? PopValue(int at)
    {
        object? v = Peek(at);
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    private object?[] PopToMark(int at)
    {
        if (_marks.Count == 0)
        {
            throw Bad(at, "an opcode needs a MARK but there is none");
        }

        int m = _marks.Pop();
        object?[] items = _stack.GetRange(m, _stack.Count - m).ToArray();
        _stack.RemoveRange(m, _stack.Count - m);
        return items;
    }

    private object? GetMemo(int at, long index) =>
        _memo.TryGetValue(index, out object? v) ? v : throw Bad(at, $"memo entry {index} is read before it is written");

    private T As<T>(int at, object? value, string what) =>
        value is T t ? t : throw Bad(at, $"{what} is {Describe(value)}, expected {typeof(T).Name}");

    private long[] Longs(int at, object? value, string what)
    {
        object?[] items = As<object?[]>(at, value, what);
        var result = new long[items.Length];
        for (int i = 0; i < items.Length; i++)
        {
            result[i] = As<long>(at, items[i], what);
        }

        return result;
    }

    private static string Describe(object? value) => value switch
    {
        null => "None",
        string s => $"'{TensorFile.Printable(s)}'",
        long or double or bool or BigInteger => value.ToString()!,
        object?[] t => $"a tuple of {t.Length}",
        List<object?> => "a list",
        PickleDict => "a dict",
        Callable c => $"'{c.Name}'",
        StorageType st => $"'{st.Name}'",
        Opaque o => $"a '{o.Global}' object",
        _ => value.GetType().Name,
    };

    private DitCacheException Bad(int at, string what) =>
        new($"{_source}: {what} ({(Legacy ? "file" : "pickle")} byte {at}); the file is corrupt or not a torch.save state_dict, save it again with torch.save(model.state_dict(), path)");

    /// <summary>An allowlisted function or class; it is matched by name, never invoked.</summary>
    internal sealed record Callable(string Name);

    /// <summary>
    /// A torch storage class; <paramref name="DType"/> is null for those DitCache cannot convert;
    /// <paramref name="ElementSize"/> in bytes (the legacy format needs it to step over storages it does not read).
    /// </summary>
    internal sealed record StorageType(string Name, StoredDType? DType, int ElementSize);

    /// <summary>
    /// A persistent id: the storage's bytes are the zip entry <c>data/{Key}</c>, or the legacy file's storage
    /// <c>Key</c>. A legacy storage view (<see cref="ViewNumel"/> ≥ 0) is elements
    /// [<see cref="ViewOffset"/>, + <see cref="ViewNumel"/>) of that root storage, and the tensor's offset counts from it.
    /// </summary>
    internal sealed record StorageRef(string Key, StorageType Type, string Location, long Numel)
    {
        public long ViewOffset { get; init; }

        public long ViewNumel { get; init; } = -1;
    }

    /// <summary>A tensor: <c>value[i] = storage[Offset + Σ i_d·Stride_d]</c>.</summary>
    internal sealed record TensorRef(StorageRef Storage, long Offset, long[] Size, long[] Stride);

    /// <summary>An object of an allowlisted data class (train.py's <c>argparse.Namespace</c>), kept as a name only.</summary>
    internal sealed record Opaque(string Global);

    /// <summary>A pickled dict or OrderedDict: insertion order kept, a repeated key replaces its value.</summary>
    internal sealed class PickleDict
    {
        private readonly Dictionary<object, int> _index = [];

        public List<KeyValuePair<object?, object?>> Items { get; } = [];

        public void Set(object? key, object? value)
        {
            if (key is string or long && _index.TryGetValue(key, out int i))
            {
                Items[i] = new(key, value);
                return;
            }

            if (key is string or long)
            {
                _index[key] = Items.Count;
            }

            Items.Add(new(key, value));
        }

        public bool TryGet(string key, out object? value)
        {
            if (_index.TryGetValue(key, out int i))
            {
                value = Items[i].Value;
                return true;
            }

            value = null;
            return false;
        }
    }
}

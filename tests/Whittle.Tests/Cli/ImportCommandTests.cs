using System.CommandLine;
using Spectre.Console;
using Whittle.Cli.Commands;
using Whittle.Import;
using Whittle.Onnx;
using Whittle.Tests.Import;
using Whittle.Text;

namespace Whittle.Tests.Cli;

public class ImportCommandTests
{
    private static int Invoke(params string[] args) => Run(args).Code;

    private static (int Code, string Output) Run(params string[] args)
    {
        var output = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No,
        });
        console.Profile.Width = 400; // one summary line, unwrapped
        var root = new RootCommand { ImportCommand.Create(console) };
        int code = root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        return (code, output.ToString().ReplaceLineEndings(" "));
    }

    [Fact]
    public void Llama2c_WritesAModelWithItsTokenizer()
    {
        string dir = Directory.CreateTempSubdirectory("whittle-cli-import-").FullName;
        try
        {
            string output = Path.Combine(dir, "stories.onnx");
            var (code, text) = Run("import", "llama2c", "--model", SharedModels.Stories260K("stories260K.bin"), "--tokenizer", SharedModels.Stories260K("tok512.bin"), "--out", output);
            Assert.Equal(0, code);
            Assert.Contains("5 blocks, 8 heads (4 KV) of 8", text);
            Assert.Contains("tokenizer llama2c", text);
            var model = OnnxModel.Load(output);
            Assert.Equal(TokenizerSource.Llama2cKind, TokenizerMetadata.ReadSource(model)!.Kind);
            Assert.Equal("input_ids", Assert.Single(model.Graph.Inputs).Name);
            Assert.Empty(Directory.GetFiles(dir, "*.tmp"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Hf_FromAFolderAndFromALocalHub()
    {
        string dir = Directory.CreateTempSubdirectory("whittle-cli-import-").FullName;
        try
        {
            string fromFolder = Path.Combine(dir, "gpt2.onnx");
            Assert.Equal(0, Invoke("import", "hf", "--model", HfImportTests.Fixture("gpt2"), "--out", fromFolder, "--external-data"));
            Assert.True(File.Exists(fromFolder + ".data"));
            Assert.Equal(TokenizerMetadata.LanguageModelTask, TokenizerMetadata.ReadTask(OnnxModel.Load(fromFolder)));

            using var hub = new LocalHub(HfImportTests.Fixture("bert"), "tests/bert");
            string fromHub = Path.Combine(dir, "bert.onnx");
            Assert.Equal(0, Invoke("import", "hf", "--model", "hf:tests/bert@main", "--hub-endpoint", hub.Endpoint.ToString(), "--cache", Path.Combine(dir, "cache"), "--out", fromHub));
            var bert = OnnxModel.Load(fromHub);
            Assert.Equal(["last_hidden_state", "pooler_output"], bert.Graph.Outputs.Select(o => o.Name));
            Assert.True(File.Exists(Path.Combine(dir, "cache", "tests--bert", "main", HubDownloader.CompleteMarker)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Hf_WeightType_KeepsABfloat16CheckpointIn16Bits_OrWidensIt()
    {
        string dir = Directory.CreateTempSubdirectory("whittle-cli-import-").FullName;
        try
        {
            string checkpoint = Path.Combine(dir, "gpt2-bf16");
            Directory.CreateDirectory(checkpoint);
            string source = HfImportTests.Fixture("gpt2");
            File.Copy(Path.Combine(source, "config.json"), Path.Combine(checkpoint, "config.json"));
            using (var f = Whittle.IO.SafeTensorsFile.Open(Path.Combine(source, HfCheckpoint.WeightsFile)))
                Whittle.IO.SafeTensorsWriter.Write(Path.Combine(checkpoint, HfCheckpoint.WeightsFile),
                    [.. f.Tensors.Select(t => Whittle.IO.SafeTensorData.FromFloat32(t.Name, f.ReadFloat32(t.Name), t.Shape, Whittle.IO.SafeTensorsDType.BF16))]);
            OnnxDataType[] MatrixTypes(string model) =>
                [.. OnnxModel.Load(model).Proto.Graph.Initializer.Where(t => t.Dims.Count >= 2).Select(t => (OnnxDataType)t.DataType).Distinct()];

            string kept = Path.Combine(dir, "kept.onnx"), wide = Path.Combine(dir, "wide.onnx");
            Assert.Equal(0, Invoke("import", "hf", "--model", checkpoint, "--out", kept));
            Assert.Equal([OnnxDataType.BFloat16], MatrixTypes(kept));
            Assert.Equal(0, Invoke("import", "hf", "--model", checkpoint, "--out", wide, "--weight-type", "float32"));
            Assert.Equal([OnnxDataType.Float], MatrixTypes(wide));
            Assert.InRange(new FileInfo(kept).Length, 0.4 * new FileInfo(wide).Length, 0.6 * new FileInfo(wide).Length);

            string refused = Path.Combine(dir, "refused.onnx");
            Assert.NotEqual(0, Invoke("import", "hf", "--model", checkpoint, "--out", refused, "--weight-type", "int8"));
            Assert.False(File.Exists(refused));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Hf_MissingFolder_IsAnExpectedError()
    {
        var ex = Assert.ThrowsAny<Exception>(() => Invoke("import", "hf", "--model", "/nonexistent/checkpoint", "--out", "/tmp/x.onnx"));
        Assert.True(Whittle.Cli.CliErrors.IsExpected(ex));
    }
}

/**
 * Which Google Cloud client methods each component's code calls, found with
 * the TypeScript type checker: every call (and `new`) in the files reachable
 * from the component's entry points (static and dynamic imports) whose
 * resolved declaration lies in an official Google client package. Calls made
 * through a structural adapter (a Google client passed where a parameter type
 * lists methods, e.g. padlock's `kmsCallsOf(createKms())`) count as calls of
 * those methods on the client. Keys are `<Class>.<method>`, the class being
 * the receiver's type where there is one (`Bucket.exists`, not the base
 * class that declares it).
 */
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const repo = join(import.meta.dirname, '..', '..');
const GOOGLE_PACKAGE = /node_modules\/(@google-cloud\/[^/]+|google-gax|google-auth-library)\//;

export interface GoogleCall {
  /** `<Class>.<method>` or `<Class>.constructor`. */
  method: string;
  /** `file:line`, relative to the repository. */
  at: string;
}

export function googleCalls(entriesByComponent: Record<string, readonly string[]>): Record<string, GoogleCall[]> {
  const parsed = ts.getParsedCommandLineOfConfigFile(join(repo, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n')); } });
  if (parsed === undefined) throw new Error('tsconfig.json does not parse');
  const roots = Object.values(entriesByComponent).flat().map((f) => join(repo, f));
  const program = ts.createProgram(roots, parsed.options);
  const checker = program.getTypeChecker();

  const isGoogle = (node: ts.Node | undefined): boolean => node !== undefined && GOOGLE_PACKAGE.test(node.getSourceFile().fileName);
  const typeName = (type: ts.Type): string | undefined => {
    const symbol = type.getSymbol() ?? type.aliasSymbol;
    return symbol !== undefined && symbol.declarations?.some(isGoogle) ? symbol.getName() : undefined;
  };

  const reachable = (entry: string): Set<string> => {
    const seen = new Set<string>();
    const stack = [entry];
    while (stack.length > 0) {
      const file = stack.pop()!;
      if (seen.has(file)) continue;
      const source = program.getSourceFile(file);
      if (source === undefined) throw new Error(`not in the program: ${file}`);
      seen.add(file);
      const follow = (specifier: string): void => {
        if (specifier.startsWith('.')) stack.push(resolve(dirname(file), specifier));
      };
      const visit = (node: ts.Node): void => {
        if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
          const typeOnly = ts.isImportDeclaration(node) ? node.importClause?.isTypeOnly === true : node.isTypeOnly;
          if (!typeOnly) follow(node.moduleSpecifier.text);
        }
        if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] !== undefined && ts.isStringLiteral(node.arguments[0])) {
          follow(node.arguments[0].text);
        }
        ts.forEachChild(node, visit);
      };
      visit(source);
    }
    return seen;
  };

  const callsIn = (file: string): GoogleCall[] => {
    const source = program.getSourceFile(file)!;
    const out: GoogleCall[] = [];
    const at = (node: ts.Node): string => `${relative(repo, file)}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
    const visit = (node: ts.Node): void => {
      if (ts.isCallExpression(node) || ts.isNewExpression(node)) {
        const declaration = checker.getResolvedSignature(node)?.declaration;
        if (declaration !== undefined && isGoogle(declaration)) {
          const callee = node.expression;
          let owner: string | undefined;
          let name: string;
          if (ts.isNewExpression(node)) {
            name = 'constructor';
            owner = typeName(checker.getTypeAtLocation(node));
          } else {
            name = ts.isPropertyAccessExpression(callee) ? callee.name.text : (declaration as ts.NamedDeclaration).name?.getText() ?? '?';
            owner = ts.isPropertyAccessExpression(callee) ? typeName(checker.getTypeAtLocation(callee.expression)) : undefined;
          }
          const parent = declaration.parent;
          owner ??= parent !== undefined && (ts.isClassLike(parent) || ts.isInterfaceDeclaration(parent)) && parent.name !== undefined ? parent.name.text : '?';
          out.push({ method: `${owner}.${name}`, at: at(node) });
        }
        // A Google client handed to a structural parameter: its listed methods will be called.
        const signature = checker.getResolvedSignature(node);
        node.arguments?.forEach((arg, k) => {
          const client = typeName(checker.getTypeAtLocation(arg));
          const parameter = signature?.parameters[k];
          if (client === undefined || parameter === undefined) return;
          let parameterType = checker.getTypeOfSymbolAtLocation(parameter, node);
          // A rest parameter (`out.push(...files)`) takes the array's elements: compare with its element type.
          const declared = parameter.valueDeclaration;
          if (declared !== undefined && ts.isParameter(declared) && declared.dotDotDotToken !== undefined && checker.isArrayType(parameterType)) {
            parameterType = checker.getTypeArguments(parameterType as ts.TypeReference)[0] ?? parameterType;
          }
          if (typeName(parameterType) !== undefined) return;
          for (const property of parameterType.getProperties()) {
            if (checker.getTypeOfSymbolAtLocation(property, node).getCallSignatures().length > 0) out.push({ method: `${client}.${property.getName()}`, at: at(arg) });
          }
        });
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
    return out;
  };

  return Object.fromEntries(
    Object.entries(entriesByComponent).map(([component, entries]) => {
      const files = new Set<string>();
      for (const entry of entries) for (const f of reachable(join(repo, entry))) files.add(f);
      return [component, [...files].sort().flatMap(callsIn)];
    }),
  );
}

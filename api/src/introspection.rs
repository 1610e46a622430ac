//! Introspection shows each principal the part of the schema it may use.
//!
//! The field guard refuses hidden fields when they are resolved, but an unfiltered
//! introspection result (when `DARTTS_INTROSPECTION` enables it) would still tell a CBP officer
//! that financial data exists and what it looks like. async-graphql's own visibility hooks are
//! per-field `fn(&Context) -> bool` attributes, which cannot read the category table, so the
//! executed introspection result is pruned here instead, before delivery.
//!
//! Two halves:
//! - [`View`]: the served SDL restricted by a rule (the policy). Fields the principal may not
//!   read go; then, until nothing changes, so do types left empty, fields and arguments whose
//!   types went, interface links an object no longer satisfies, and types no longer reachable
//!   from the root types. What remains is itself a valid schema: every name it mentions exists.
//! - [`Plan`]: the request's document, re-read to know which response keys hold `__schema` and
//!   `__type` results and which introspection field every key (aliases and fragments included)
//!   stands for. It prunes those results to the view. A result it cannot explain — a key it
//!   cannot map, or an object whose `name` was not selected, so its identity is unknown — is
//!   withheld rather than guessed.

use std::collections::{BTreeMap, BTreeSet};

use async_graphql::parser::types::{
    BaseType, ExecutableDocument, Field, FieldDefinition, InputValueDefinition,
    OperationDefinition, Selection, SelectionSet, Type, TypeKind, TypeSystemDefinition,
};
use async_graphql::{ErrorExtensionValues, Name, PathSegment, Positioned, ServerError, Value};

use crate::error::ErrorCode;
use crate::policy::{PermissionSet, Policy};

/// Always present, as async-graphql lists them, whoever asks.
const BUILT_IN_SCALARS: [&str; 5] = ["Boolean", "Int", "Float", "String", "ID"];

/// Filter arguments and sort keys that read record fields: the resolvers refuse them when a
/// field is unreadable (`guard::require_readable`), so introspection does not offer them
/// either. Unlisted input fields and enum values read no guarded field and are shown. Kept in
/// step with each filter's `RecordFilter::fields_read` by a test below.
const READS: &[Reads] = &[
    Reads {
        ty: "TradeRecordFilter",
        record: "TradeRecord",
        members: &[
            ("declarationDateFrom", &["declarationDate"]),
            ("declarationDateTo", &["declarationDate"]),
            ("hsCodePrefix", &["hsCode"]),
            ("direction", &["direction"]),
            ("declarationId", &["declarationId"]),
            ("countryOfOrigin", &["countryOfOrigin"]),
            ("countryOfExport", &["countryOfExport"]),
            ("countryOfDestination", &["countryOfDestination"]),
            ("reportingCountry", &["reportingCountry"]),
            ("partnerCountry", &["partnerCountry"]),
            ("providerCountry", &["providerCountry"]),
            ("importerNameContains", &["importerName"]),
            ("importerId", &["importerId"]),
            ("exporterNameContains", &["exporterName"]),
            ("manufacturerNameContains", &["manufacturerName"]),
            ("manufacturerId", &["manufacturerId"]),
            ("port", &["port"]),
            ("transportMode", &["transportMode"]),
            ("declaredValueUsdMin", &["declaredValueUsd"]),
            ("declaredValueUsdMax", &["declaredValueUsd"]),
            ("batchId", &["batch"]),
            ("linkedFinancialActivity", &["linkedFinancialTransactions"]),
        ],
    },
    Reads {
        ty: "FinancialTransactionFilter",
        record: "FinancialTransaction",
        members: &[
            ("reportType", &["reportType"]),
            ("transactionDateFrom", &["transactionDate"]),
            ("transactionDateTo", &["transactionDate"]),
            ("amountUsdMin", &["amountUsd"]),
            ("amountUsdMax", &["amountUsd"]),
            ("subjectNameContains", &["subjectName"]),
            ("subjectTin", &["subjectTin"]),
            ("accountNumber", &["accountNumber"]),
        ],
    },
    Reads {
        ty: "SubjectRecordFilter",
        record: "SubjectRecord",
        members: &[
            ("kind", &["kind"]),
            ("caseStatus", &["caseStatus"]),
            ("nameContains", &["name", "businessName"]),
            ("recordId", &["recordId"]),
        ],
    },
    Reads {
        ty: "MirrorFilter",
        record: "TradeRecord",
        members: &[
            ("nation", &["reportingCountry", "partnerCountry"]),
            ("hsCodePrefix", &["hsCode"]),
            ("declarationDateFrom", &["declarationDate"]),
            ("declarationDateTo", &["declarationDate"]),
        ],
    },
    Reads {
        ty: "TradeFinanceFilter",
        record: "FinancialTransaction",
        members: &[
            ("dateFrom", &["transactionDate"]),
            ("dateTo", &["transactionDate"]),
            ("subjectNameContains", &["subjectName"]),
            ("subjectTin", &["subjectTin"]),
        ],
    },
    Reads {
        ty: "TotalsDimension",
        record: "TradeRecord",
        members: crate::analysis::totals::DIMENSION_READS,
    },
    Reads {
        ty: "TotalsMeasure",
        record: "TradeRecord",
        members: crate::analysis::totals::MEASURE_READS,
    },
    Reads {
        ty: "TradeRecordSortField",
        record: "TradeRecord",
        members: &[
            ("DECLARATION_DATE", &["declarationDate"]),
            ("DECLARATION_ID", &["declarationId"]),
            ("LINE_NUMBER", &["lineNumber"]),
            ("HS_CODE", &["hsCode"]),
            ("IMPORTER_NAME", &["importerName"]),
            ("IMPORTER_ID", &["importerId"]),
            ("MANUFACTURER_NAME", &["manufacturerName"]),
            ("COUNTRY_OF_ORIGIN", &["countryOfOrigin"]),
            ("COUNTRY_OF_EXPORT", &["countryOfExport"]),
            ("PARTNER_COUNTRY", &["partnerCountry"]),
            ("PROVIDER_COUNTRY", &["providerCountry"]),
            ("PORT", &["port"]),
            ("TRANSPORT_MODE", &["transportMode"]),
            ("QUANTITY", &["quantity"]),
            ("NET_WEIGHT_KG", &["netWeightKg"]),
            ("DECLARED_VALUE_USD", &["declaredValueUsd"]),
        ],
    },
];

/// The input fields or enum values of `ty` that read fields of `record`: `(member, fields)`.
struct Reads {
    ty: &'static str,
    record: &'static str,
    members: &'static [(&'static str, &'static [&'static str])],
}

/// A part of a type whose visibility the rule decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Member<'a> {
    /// An output field of an object or interface type.
    Field { ty: &'a str, name: &'a str },
    /// A field of an input object type.
    InputField { ty: &'a str, name: &'a str },
    /// A value of an enum type.
    EnumValue { ty: &'a str, name: &'a str },
}

/// The rule for one principal: fields by their category (`policies/fields.toml`); filter
/// arguments and sort keys by the fields they read (`READS`).
pub fn rule<'a>(policy: &'a Policy, perms: &'a PermissionSet) -> impl Fn(Member<'_>) -> bool + 'a {
    let readable = |ty: &str, field: &str| policy.missing_category(perms, ty, field).is_none();
    move |member| match member {
        Member::Field { ty, name } => readable(ty, name),
        Member::InputField { ty, name } | Member::EnumValue { ty, name } => READS
            .iter()
            .filter(|reads| reads.ty == ty)
            .flat_map(|reads| reads.members.iter().map(move |m| (reads.record, m)))
            .filter(|(_, (member, _))| *member == name)
            .all(|(record, (_, fields))| fields.iter().all(|f| readable(record, f))),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Scalar,
    Object,
    Interface,
    Union,
    Enum,
    InputObject,
}

/// An argument or input field: the named type it takes, and whether a value must be given.
#[derive(Clone, Debug)]
struct Input {
    ty: String,
    required: bool,
}

#[derive(Clone, Debug)]
struct OutputField {
    ty: String,
    args: BTreeMap<String, Input>,
}

#[derive(Clone, Debug)]
struct TypeDef {
    kind: Kind,
    fields: BTreeMap<String, OutputField>,
    input_fields: BTreeMap<String, Input>,
    values: BTreeSet<String>,
    /// Interfaces this object or interface implements.
    implements: BTreeSet<String>,
    /// A union's member types.
    members: BTreeSet<String>,
}

impl TypeDef {
    fn new(kind: Kind) -> Self {
        TypeDef {
            kind,
            fields: BTreeMap::new(),
            input_fields: BTreeMap::new(),
            values: BTreeSet::new(),
            implements: BTreeSet::new(),
            members: BTreeSet::new(),
        }
    }

    /// A type with nothing left in it is not valid GraphQL, and would only say that
    /// something is hidden there.
    fn is_empty(&self) -> bool {
        match self.kind {
            Kind::Scalar => false,
            Kind::Object | Kind::Interface => self.fields.is_empty(),
            Kind::Union => self.members.is_empty(),
            Kind::Enum => self.values.is_empty(),
            Kind::InputObject => self.input_fields.is_empty(),
        }
    }

    fn size(&self) -> usize {
        1 + self.fields.len()
            + self.fields.values().map(|f| f.args.len()).sum::<usize>()
            + self.input_fields.len()
            + self.values.len()
            + self.implements.len()
            + self.members.len()
    }
}

/// A schema as one principal may see it. Introspection types (`__*`) are not part of it and
/// are always shown: they describe GraphQL, not DARTTS.
#[derive(Clone, Debug)]
pub struct View {
    types: BTreeMap<String, TypeDef>,
    query: String,
    mutation: Option<String>,
    subscription: Option<String>,
    /// Types the directives' arguments take: reachable whatever else goes.
    directive_inputs: BTreeSet<String>,
}

fn named(ty: &Type) -> &str {
    match &ty.base {
        BaseType::Named(name) => name.as_str(),
        BaseType::List(inner) => named(inner),
    }
}

fn inputs<'a>(defs: impl IntoIterator<Item = &'a InputValueDefinition>) -> BTreeMap<String, Input> {
    defs.into_iter()
        .map(|def| {
            let input = Input {
                ty: named(&def.ty.node).to_owned(),
                required: !def.ty.node.nullable && def.default_value.is_none(),
            };
            (def.name.node.to_string(), input)
        })
        .collect()
}

fn output_type(
    kind: Kind,
    fields: &[Positioned<FieldDefinition>],
    implements: &[Positioned<Name>],
) -> TypeDef {
    TypeDef {
        implements: implements.iter().map(|i| i.node.to_string()).collect(),
        fields: fields
            .iter()
            .map(|f| {
                let field = OutputField {
                    ty: named(&f.node.ty.node).to_owned(),
                    args: inputs(f.node.arguments.iter().map(|a| &a.node)),
                };
                (f.node.name.node.to_string(), field)
            })
            .collect(),
        ..TypeDef::new(kind)
    }
}

impl View {
    /// The whole schema described by `sdl` (what `Schema::sdl` prints).
    pub fn parse(sdl: &str) -> Result<View, String> {
        let doc = async_graphql::parser::parse_schema(sdl).map_err(|e| e.to_string())?;
        let mut types = BTreeMap::new();
        let mut roots = None;
        let mut directive_inputs = BTreeSet::new();
        for definition in doc.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    let name =
                        |n: &Option<Positioned<Name>>| n.as_ref().map(|n| n.node.to_string());
                    roots = Some((
                        name(&schema.node.query),
                        name(&schema.node.mutation),
                        name(&schema.node.subscription),
                    ));
                }
                TypeSystemDefinition::Directive(directive) => {
                    directive_inputs.extend(
                        inputs(directive.node.arguments.iter().map(|a| &a.node))
                            .into_values()
                            .map(|i| i.ty),
                    );
                }
                TypeSystemDefinition::Type(definition) => {
                    let definition = definition.node;
                    let def = match &definition.kind {
                        TypeKind::Scalar => TypeDef::new(Kind::Scalar),
                        TypeKind::Object(o) => output_type(Kind::Object, &o.fields, &o.implements),
                        TypeKind::Interface(i) => {
                            output_type(Kind::Interface, &i.fields, &i.implements)
                        }
                        TypeKind::Union(u) => TypeDef {
                            members: u.members.iter().map(|m| m.node.to_string()).collect(),
                            ..TypeDef::new(Kind::Union)
                        },
                        TypeKind::Enum(e) => TypeDef {
                            values: e
                                .values
                                .iter()
                                .map(|v| v.node.value.node.to_string())
                                .collect(),
                            ..TypeDef::new(Kind::Enum)
                        },
                        TypeKind::InputObject(i) => TypeDef {
                            input_fields: inputs(i.fields.iter().map(|f| &f.node)),
                            ..TypeDef::new(Kind::InputObject)
                        },
                    };
                    types.insert(definition.name.node.to_string(), def);
                }
            }
        }
        for scalar in BUILT_IN_SCALARS {
            types
                .entry(scalar.to_owned())
                .or_insert_with(|| TypeDef::new(Kind::Scalar));
        }
        // Without a `schema` block, the roots are the types with the conventional names.
        let (query, mutation, subscription) = roots.unwrap_or_else(|| {
            let present = |n: &str| types.contains_key(n).then(|| n.to_owned());
            (
                present("Query"),
                present("Mutation"),
                present("Subscription"),
            )
        });
        let query = query.ok_or("the schema has no query type")?;
        if !types.contains_key(&query) {
            return Err(format!("the query type {query} is not defined"));
        }
        Ok(View {
            types,
            query,
            mutation,
            subscription,
            directive_inputs,
        })
    }

    /// The part of this schema `allowed` lets a principal see, still a valid schema.
    pub fn restrict(&self, allowed: impl Fn(Member<'_>) -> bool) -> View {
        let mut view = self.clone();
        for (name, def) in &mut view.types {
            match def.kind {
                Kind::Object | Kind::Interface => def
                    .fields
                    .retain(|f, _| allowed(Member::Field { ty: name, name: f })),
                Kind::InputObject => {
                    let shown = |f: &str| allowed(Member::InputField { ty: name, name: f });
                    // A required field the caller cannot see makes every value it could write
                    // invalid: the whole input type goes (and, below, what needs it).
                    if def
                        .input_fields
                        .iter()
                        .any(|(f, i)| i.required && !shown(f))
                    {
                        def.input_fields.clear();
                    }
                    def.input_fields.retain(|f, _| shown(f));
                }
                Kind::Enum => def
                    .values
                    .retain(|v| allowed(Member::EnumValue { ty: name, name: v })),
                Kind::Scalar | Kind::Union => {}
            }
        }
        // Each pass only removes, so a pass that removes nothing is the fixpoint.
        loop {
            let before = view.size();
            view.drop_dangling();
            view.drop_unreachable();
            if view.size() == before {
                return view;
            }
        }
    }

    fn size(&self) -> usize {
        self.types.values().map(TypeDef::size).sum()
    }

    /// Removes empty types, then every reference to a type that is gone.
    fn drop_dangling(&mut self) {
        // The query root stays even if empty: a schema must have one (and every account may
        // read `me`, so it never is).
        let query = self.query.clone();
        self.types
            .retain(|name, def| *name == query || !def.is_empty());
        let present: BTreeSet<String> = self.types.keys().cloned().collect();
        let interface_fields: BTreeMap<String, BTreeSet<String>> = self
            .types
            .iter()
            .filter(|(_, d)| d.kind == Kind::Interface)
            .map(|(n, d)| (n.clone(), d.fields.keys().cloned().collect()))
            .collect();
        for def in self.types.values_mut() {
            // A field whose type went, or that needs an argument nobody can write, goes.
            def.fields.retain(|_, f| {
                present.contains(&f.ty)
                    && f.args
                        .values()
                        .all(|a| !a.required || present.contains(&a.ty))
            });
            for field in def.fields.values_mut() {
                field.args.retain(|_, a| present.contains(&a.ty));
            }
            if def
                .input_fields
                .values()
                .any(|i| i.required && !present.contains(&i.ty))
            {
                def.input_fields.clear();
            }
            def.input_fields.retain(|_, i| present.contains(&i.ty));
            def.members.retain(|m| present.contains(m));
            // An implementation must have every field of its interface; one that lost some no
            // longer claims the interface (and is not among its possible types).
            let fields = &def.fields;
            def.implements.retain(|i| {
                interface_fields
                    .get(i)
                    .is_some_and(|wanted| wanted.iter().all(|f| fields.contains_key(f)))
            });
        }
        if self.mutation.as_ref().is_some_and(|m| !present.contains(m)) {
            self.mutation = None;
        }
        if self
            .subscription
            .as_ref()
            .is_some_and(|s| !present.contains(s))
        {
            self.subscription = None;
        }
    }

    /// Removes every type no longer reachable from the roots: through fields, arguments,
    /// input fields, implemented interfaces, union members, and from an interface to its
    /// implementations (a `node(id:)` answer may be any of them).
    fn drop_unreachable(&mut self) {
        let mut implementations: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, def) in &self.types {
            for interface in &def.implements {
                implementations
                    .entry(interface.as_str())
                    .or_default()
                    .push(name.as_str());
            }
        }
        let mut stack: Vec<&str> = [
            Some(&self.query),
            self.mutation.as_ref(),
            self.subscription.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .chain(BUILT_IN_SCALARS)
        .chain(self.directive_inputs.iter().map(String::as_str))
        .collect();
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        while let Some(name) = stack.pop() {
            if !seen.insert(name) {
                continue;
            }
            let Some(def) = self.types.get(name) else {
                continue;
            };
            for field in def.fields.values() {
                stack.push(&field.ty);
                stack.extend(field.args.values().map(|a| a.ty.as_str()));
            }
            stack.extend(def.input_fields.values().map(|i| i.ty.as_str()));
            stack.extend(def.implements.iter().map(String::as_str));
            stack.extend(def.members.iter().map(String::as_str));
            stack.extend(implementations.get(name).into_iter().flatten().copied());
        }
        let seen: BTreeSet<String> = seen.into_iter().map(str::to_owned).collect();
        self.types.retain(|name, _| seen.contains(name));
    }

    fn has_type(&self, ty: &str) -> bool {
        ty.starts_with("__") || self.types.contains_key(ty)
    }

    fn def(&self, ty: &str) -> Option<&TypeDef> {
        self.types.get(ty)
    }

    fn has_field(&self, ty: &str, field: &str) -> bool {
        ty.starts_with("__") || self.def(ty).is_some_and(|d| d.fields.contains_key(field))
    }

    fn has_arg(&self, ty: &str, field: &str, arg: &str) -> bool {
        ty.starts_with("__")
            || self
                .def(ty)
                .and_then(|d| d.fields.get(field))
                .is_some_and(|f| f.args.contains_key(arg))
    }

    fn has_input_field(&self, ty: &str, field: &str) -> bool {
        ty.starts_with("__")
            || self
                .def(ty)
                .is_some_and(|d| d.input_fields.contains_key(field))
    }

    fn has_value(&self, ty: &str, value: &str) -> bool {
        ty.starts_with("__") || self.def(ty).is_some_and(|d| d.values.contains(value))
    }

    fn implements(&self, ty: &str, interface: &str) -> bool {
        self.def(ty)
            .is_some_and(|d| d.implements.contains(interface))
    }

    /// `possible` is among the possible types of the union or interface `abstract_type`.
    fn possible(&self, abstract_type: &str, possible: &str) -> bool {
        match self.def(abstract_type).map(|d| d.kind) {
            Some(Kind::Union) => self
                .def(abstract_type)
                .is_some_and(|d| d.members.contains(possible)),
            Some(Kind::Interface) => self.implements(possible, abstract_type),
            _ => false,
        }
    }
}

/// Why an introspection result was withheld.
type Refusal = String;

/// The fields of a selection by response key, fragments expanded, in document order.
type Keys<'d> = Vec<(&'d str, Vec<&'d Field>)>;

/// Fragments spreading fragments deeper than this are not expanded; keys they would explain
/// then refuse the result (validation bounds real documents far below it).
const MAX_FRAGMENT_NESTING: usize = 32;

/// The request's document, kept to explain an introspection result after execution.
pub struct Plan {
    doc: ExecutableDocument,
    operation: Option<String>,
}

impl Plan {
    /// `None` when the request asks for no introspection — almost always, found by a
    /// substring search before any parsing.
    pub fn of(request: &async_graphql::Request) -> Option<Plan> {
        let query = &request.query;
        if !query.contains("__schema") && !query.contains("__type") {
            return None;
        }
        // A document that does not parse does not execute either: nothing to filter.
        let doc = async_graphql::parser::parse_query(query).ok()?;
        let plan = Plan {
            doc,
            operation: request.operation_name.clone(),
        };
        // The names may appear in a string or a comment; only fields count. Any field of any
        // operation or fragment so named is enough: filtering more often than needed is safe,
        // and this check must not depend on working out which selections are reachable.
        let mut stack: Vec<&SelectionSet> = plan
            .doc
            .operations
            .iter()
            .map(|(_, op)| &op.node.selection_set.node)
            .chain(
                plan.doc
                    .fragments
                    .values()
                    .map(|f| &f.node.selection_set.node),
            )
            .collect();
        let mut asks = false;
        while let Some(set) = stack.pop() {
            for item in &set.items {
                match &item.node {
                    Selection::Field(field) => {
                        let name = field.node.name.node.as_str();
                        asks |= matches!(name, "__schema" | "__type");
                        stack.push(&field.node.selection_set.node);
                    }
                    Selection::InlineFragment(inline) => {
                        stack.push(&inline.node.selection_set.node);
                    }
                    Selection::FragmentSpread(_) => {}
                }
            }
        }
        asks.then_some(plan)
    }

    /// The operation that ran: the one named by `operationName`, else the only one.
    fn operation(&self) -> Option<&OperationDefinition> {
        let wanted = self.operation.as_deref();
        let mut candidates = self
            .doc
            .operations
            .iter()
            .filter(|(name, _)| wanted.is_none() || name.map(|n| n.as_str()) == wanted);
        match (candidates.next(), candidates.next()) {
            (Some((_, op)), None) => Some(&op.node),
            _ => None,
        }
    }

    /// Prunes every `__schema` and `__type` result in `response` to `view`. A result that
    /// cannot be explained is replaced by null with a `BAD_USER_INPUT` error; `__schema` is
    /// non-null, so that nulls the whole `data`, as GraphQL's null propagation would.
    pub fn apply(&self, view: &View, response: &mut async_graphql::Response) {
        if response.data == Value::Null {
            return;
        }
        let Some(operation) = self.operation() else {
            response.data = Value::Null;
            response
                .errors
                .push(refusal(None, "cannot tell which operation ran"));
            return;
        };
        let walk = Walk {
            doc: &self.doc,
            view,
        };
        let top = keys(&self.doc, [&operation.selection_set.node]);
        let Value::Object(map) = &mut response.data else {
            return;
        };
        let mut refusals = Vec::new();
        let mut schema_refused = false;
        for (key, value) in map.iter_mut() {
            let outcome = match lookup(&top, key.as_str()) {
                Err(reason) => Err(reason),
                Ok(("__schema", fields)) => walk.schema(&walk.keys_of(fields), value),
                // A hidden type is answered like one that does not exist.
                Ok(("__type", fields)) => walk.ty_or_null(&walk.keys_of(fields), value),
                Ok(_) => Ok(()),
            };
            if let Err(reason) = outcome {
                schema_refused |= !matches!(lookup(&top, key.as_str()), Ok(("__type", _)));
                *value = Value::Null;
                refusals.push(refusal(Some(key.as_str()), &reason));
            }
        }
        if schema_refused {
            response.data = Value::Null;
        }
        response.errors.extend(refusals);
    }
}

fn refusal(key: Option<&str>, reason: &str) -> ServerError {
    let mut error = ServerError::new(
        format!(
            "introspection result withheld: {reason}; select `name` on every type, field, \
             argument and enum value so it can be limited to what your role may use"
        ),
        None,
    );
    error.path = key
        .map(|k| PathSegment::Field(k.to_owned()))
        .into_iter()
        .collect();
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", ErrorCode::BadUserInput.as_str());
    error.extensions = Some(extensions);
    error
}

/// The field a response key stands for, and its occurrences. A key the document does not
/// explain is refused: an unexplained value could hold anything.
fn lookup<'k, 'd>(keys: &'k Keys<'d>, key: &str) -> Result<(&'d str, &'k [&'d Field]), Refusal> {
    keys.iter()
        .find(|(k, _)| *k == key)
        .map(|(_, fields)| {
            let name = fields.first().map_or("", |f| f.name.node.as_str());
            (name, fields.as_slice())
        })
        .ok_or_else(|| format!("cannot tell what `{key}` holds"))
}

/// The fields of `sets` by response key.
fn keys<'d>(
    doc: &'d ExecutableDocument,
    sets: impl IntoIterator<Item = &'d SelectionSet>,
) -> Keys<'d> {
    let mut out = Vec::new();
    for set in sets {
        collect(doc, set, &mut out, 0);
    }
    out
}

fn collect<'d>(
    doc: &'d ExecutableDocument,
    set: &'d SelectionSet,
    out: &mut Keys<'d>,
    depth: usize,
) {
    if depth > MAX_FRAGMENT_NESTING {
        return;
    }
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.as_str();
                match out.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, fields)) => fields.push(&field.node),
                    None => out.push((key, vec![&field.node])),
                }
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node) {
                    collect(doc, &fragment.node.selection_set.node, out, depth + 1);
                }
            }
            Selection::InlineFragment(inline) => {
                collect(doc, &inline.node.selection_set.node, out, depth + 1);
            }
        }
    }
}

/// Where an `__InputValue` belongs.
#[derive(Clone, Copy)]
enum Owner<'a> {
    Args { ty: &'a str, field: &'a str },
    InputObject(&'a str),
    Directive,
}

struct Walk<'a> {
    doc: &'a ExecutableDocument,
    view: &'a View,
}

impl<'a> Walk<'a> {
    fn keys_of(&self, fields: &[&'a Field]) -> Keys<'a> {
        keys(self.doc, fields.iter().map(|f| &f.selection_set.node))
    }

    /// A `__Schema` object.
    fn schema(&self, keys: &Keys<'a>, value: &mut Value) -> Result<(), Refusal> {
        let Value::Object(map) = value else {
            return Ok(());
        };
        for (key, value) in map.iter_mut() {
            let (field, fields) = lookup(keys, key)?;
            let sub = self.keys_of(fields);
            match field {
                "types" => retain(value, |t| self.ty(&sub, t))?,
                "queryType" | "mutationType" | "subscriptionType" => {
                    self.ty_or_null(&sub, value)?;
                }
                "directives" => retain(value, |d| self.directive(&sub, d).map(|()| true))?,
                _ => {}
            }
        }
        Ok(())
    }

    /// A `__Type` object: `false` if the type is hidden. Wrapping types (lists, non-null)
    /// have no name and no members of their own; their `ofType` is checked.
    fn ty(&self, keys: &Keys<'a>, value: &mut Value) -> Result<bool, Refusal> {
        if !matches!(value, Value::Object(_)) {
            return Ok(true);
        }
        let name = name_of(keys, value, "type")?;
        let Value::Object(map) = value else {
            return Ok(true);
        };
        if let Some(name) = &name
            && !self.view.has_type(name)
        {
            return Ok(false);
        }
        for (key, value) in map.iter_mut() {
            let (field, fields) = lookup(keys, key)?;
            let sub = self.keys_of(fields);
            let members = matches!(
                field,
                "fields" | "inputFields" | "enumValues" | "interfaces" | "possibleTypes"
            );
            let owner = match (&name, members) {
                (_, false) => "",
                (Some(name), true) => name.as_str(),
                // Only named types have members; a wrapping type's are null.
                (None, true) if *value == Value::Null => continue,
                (None, true) => return Err("a type without a name has members".into()),
            };
            match field {
                "fields" => retain(value, |f| self.field(owner, &sub, f))?,
                "inputFields" => {
                    retain(value, |i| {
                        self.input_value(Owner::InputObject(owner), &sub, i)
                    })?;
                }
                "enumValues" => retain(value, |v| {
                    let value = required_name(&sub, v, "enum value")?;
                    Ok(self.view.has_value(owner, &value))
                })?,
                "interfaces" => retain(value, |t| {
                    let interface = required_name(&sub, t, "interface")?;
                    Ok(self.view.implements(owner, &interface) && self.ty(&sub, t)?)
                })?,
                "possibleTypes" => retain(value, |t| {
                    let possible = required_name(&sub, t, "possible type")?;
                    Ok(self.view.possible(owner, &possible) && self.ty(&sub, t)?)
                })?,
                "ofType" => self.ty_or_null(&sub, value)?,
                _ => {}
            }
        }
        Ok(true)
    }

    /// A single `__Type`, not in a list: a hidden one becomes null.
    fn ty_or_null(&self, keys: &Keys<'a>, value: &mut Value) -> Result<(), Refusal> {
        if !self.ty(keys, value)? {
            *value = Value::Null;
        }
        Ok(())
    }

    /// A `__Field` of `owner`: `false` if hidden.
    fn field(&self, owner: &str, keys: &Keys<'a>, value: &mut Value) -> Result<bool, Refusal> {
        let name = required_name(keys, value, "field")?;
        if !self.view.has_field(owner, &name) {
            return Ok(false);
        }
        let Value::Object(map) = value else {
            return Ok(true);
        };
        for (key, value) in map.iter_mut() {
            let (field, fields) = lookup(keys, key)?;
            let sub = self.keys_of(fields);
            if field == "args" {
                let owner = Owner::Args {
                    ty: owner,
                    field: &name,
                };
                retain(value, |a| self.input_value(owner, &sub, a))?;
            }
            // Cannot happen (a shown field's type is shown); if it did, the field would go.
            if field == "type" && !self.ty(&sub, value)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// An `__InputValue`: an argument, input field or directive argument; `false` if hidden.
    fn input_value(
        &self,
        owner: Owner<'_>,
        keys: &Keys<'a>,
        value: &mut Value,
    ) -> Result<bool, Refusal> {
        let name = required_name(keys, value, "argument or input field")?;
        let shown = match owner {
            Owner::Args { ty, field } => self.view.has_arg(ty, field, &name),
            Owner::InputObject(ty) => self.view.has_input_field(ty, &name),
            Owner::Directive => true,
        };
        if !shown {
            return Ok(false);
        }
        let Value::Object(map) = value else {
            return Ok(true);
        };
        for (key, value) in map.iter_mut() {
            let (field, fields) = lookup(keys, key)?;
            if field == "type" && !self.ty(&self.keys_of(fields), value)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A `__Directive`: always shown (directives are GraphQL's), its arguments checked.
    fn directive(&self, keys: &Keys<'a>, value: &mut Value) -> Result<(), Refusal> {
        let Value::Object(map) = value else {
            return Ok(());
        };
        for (key, value) in map.iter_mut() {
            let (field, fields) = lookup(keys, key)?;
            if field == "args" {
                let sub = self.keys_of(fields);
                retain(value, |a| self.input_value(Owner::Directive, &sub, a))?;
            }
        }
        Ok(())
    }
}

/// The `name` of an introspection object, under whatever key the query gave it: `None` for
/// a wrapping type. Without it the object's identity is unknown, and it is refused.
/// The `name` of an introspection object, under whatever key the query gave it: `None` for
/// a wrapping type. Without it the object's identity is unknown, and it is refused.
fn name_of(keys: &Keys<'_>, value: &Value, what: &str) -> Result<Option<String>, Refusal> {
    let Value::Object(map) = value else {
        return Err(format!("a {what} that is not an object"));
    };
    let name = keys
        .iter()
        .filter(|(_, fields)| fields.first().is_some_and(|f| f.name.node == "name"))
        .find_map(|(key, _)| map.get(*key));
    match name {
        Some(Value::String(name)) => Ok(Some(name.clone())),
        Some(Value::Null) => Ok(None),
        _ => Err(format!("a {what} without its `name`")),
    }
}

fn required_name(keys: &Keys<'_>, value: &Value, what: &str) -> Result<String, Refusal> {
    name_of(keys, value, what)?.ok_or_else(|| format!("a {what} without its `name`"))
}

/// Keeps the items of a list for which `keep` says so. Anything but a list or null where a
/// list belongs is refused.
fn retain(
    list: &mut Value,
    mut keep: impl FnMut(&mut Value) -> Result<bool, Refusal>,
) -> Result<(), Refusal> {
    let items = match list {
        Value::List(items) => items,
        Value::Null => return Ok(()),
        _ => return Err("a list that is not a list".into()),
    };
    let mut refused = None;
    items.retain_mut(|item| {
        if refused.is_some() {
            return false;
        }
        match keep(item) {
            Ok(keep) => keep,
            Err(reason) => {
                refused = Some(reason);
                false
            }
        }
    });
    refused.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use async_graphql::{
        EmptySubscription, Enum, ID, InputObject, Interface, Object, Schema, SimpleObject, Union,
    };
    use proptest::prelude::*;
    use serde_json::{Value as Json, json};

    use super::*;

    const INTROSPECTION_QUERY: &str = include_str!("../../tests/introspection/query.graphql");

    // A small schema with every shape the filter handles: an interface and its
    // implementations, a union, an input object with a required field, an enum of sort keys,
    // a required argument, a mutation root. Categories: A any account, T trade, P trade PII,
    // F financial, S secrets, U audit, X admin.

    #[derive(SimpleObject)]
    struct Trade {
        id: ID,
        hs_code: String,
        importer: String,
        money: Vec<Money>,
        batch: Batch,
    }

    #[derive(SimpleObject)]
    struct Money {
        id: ID,
        amount: f64,
    }

    #[derive(SimpleObject)]
    struct Batch {
        id: ID,
        loaded_by: String,
    }

    #[derive(SimpleObject)]
    struct Alert {
        text: String,
    }

    #[derive(Union)]
    enum Hit {
        Trade(Trade),
        Alert(Alert),
    }

    #[derive(Interface)]
    #[graphql(field(name = "id", ty = "&ID"))]
    enum Node {
        Trade(Trade),
        Money(Money),
        Batch(Batch),
    }

    #[derive(InputObject)]
    struct TradeFilter {
        hs_code: Option<String>,
        importer: Option<String>,
        linked: Option<bool>,
    }

    #[derive(InputObject)]
    struct Secret {
        key: String,
        hint: Option<String>,
    }

    #[derive(Enum, Clone, Copy, PartialEq, Eq)]
    enum SortKey {
        HsCode,
        Importer,
    }

    fn trade() -> Trade {
        Trade {
            id: ID::from("t"),
            hs_code: String::new(),
            importer: String::new(),
            money: vec![Money {
                id: ID::from("m"),
                amount: 0.0,
            }],
            batch: Batch {
                id: ID::from("b"),
                loaded_by: String::new(),
            },
        }
    }

    struct Query;

    #[Object]
    impl Query {
        async fn trades(
            &self,
            _filter: Option<TradeFilter>,
            _order: Option<SortKey>,
        ) -> Vec<Trade> {
            vec![trade()]
        }
        async fn money(&self, _min: Option<f64>) -> Vec<Money> {
            trade().money
        }
        async fn node(&self, id: ID) -> Option<Node> {
            Some(match id.as_str() {
                "t" => Node::Trade(trade()),
                "m" => Node::Money(trade().money.remove(0)),
                _ => Node::Batch(trade().batch),
            })
        }
        async fn search(&self, text: String) -> Vec<Hit> {
            vec![Hit::Trade(trade()), Hit::Alert(Alert { text })]
        }
        async fn unlock(&self, secret: Secret) -> bool {
            secret.key == secret.hint.unwrap_or_default()
        }
        async fn me(&self) -> String {
            String::new()
        }
    }

    struct Mutation;

    #[Object]
    impl Mutation {
        async fn wipe(&self) -> bool {
            false
        }
    }

    type TestSchema = Schema<Query, Mutation, EmptySubscription>;

    fn schema() -> &'static TestSchema {
        static SCHEMA: OnceLock<TestSchema> = OnceLock::new();
        SCHEMA.get_or_init(|| Schema::new(Query, Mutation, EmptySubscription))
    }

    fn category(member: Member<'_>) -> char {
        match member {
            Member::Field { ty, name } => match (ty, name) {
                ("Query", "trades" | "search") => 'T',
                ("Query", "money") | ("Trade", "money") | ("Money", _) => 'F',
                ("Query", "unlock") => 'S',
                ("Mutation", _) => 'X',
                ("Trade", "importer") => 'P',
                ("Trade" | "Alert", _) => 'T',
                ("Batch", "loadedBy") => 'U',
                _ => 'A',
            },
            Member::InputField { ty, name } | Member::EnumValue { ty, name } => match (ty, name) {
                ("TradeFilter", "importer") | ("SortKey", "IMPORTER") => 'P',
                ("TradeFilter", "linked") => 'F',
                ("Secret", "key") => 'S',
                _ => 'A',
            },
        }
    }

    fn role(categories: &str) -> impl Fn(Member<'_>) -> bool + '_ {
        move |member| categories.contains(category(member))
    }

    fn full_view() -> &'static View {
        static VIEW: OnceLock<View> = OnceLock::new();
        VIEW.get_or_init(|| View::parse(&schema().sdl()).unwrap())
    }

    fn run(query: &str) -> async_graphql::Response {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let response = runtime.block_on(schema().execute(query));
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        response
    }

    /// `query` executed unfiltered, then filtered with `allowed`: (data, error codes).
    fn filtered(query: &str, allowed: impl Fn(Member<'_>) -> bool) -> (Json, Vec<String>) {
        let mut response = run(query);
        filter(query, &mut response, allowed);
        answer(response)
    }

    fn filtered_op(query: &str, operation: &str) -> (Json, Vec<String>) {
        let request = async_graphql::Request::new(query).operation_name(operation);
        let plan = Plan::of(&request).expect("asks for introspection");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut response = runtime.block_on(schema().execute(request));
        plan.apply(&full_view().restrict(role("AT")), &mut response);
        answer(response)
    }

    fn filter(
        query: &str,
        response: &mut async_graphql::Response,
        allowed: impl Fn(Member<'_>) -> bool,
    ) {
        let plan = Plan::of(&async_graphql::Request::new(query)).expect("asks for introspection");
        plan.apply(&full_view().restrict(allowed), response);
    }

    fn answer(response: async_graphql::Response) -> (Json, Vec<String>) {
        let codes = response
            .errors
            .iter()
            .map(|e| {
                let code = e.extensions.as_ref().and_then(|x| x.get("code")).cloned();
                code.map_or_else(String::new, |c| c.to_string().trim_matches('"').to_owned())
            })
            .collect();
        (response.data.into_json().unwrap(), codes)
    }

    fn full_schema(allowed: impl Fn(Member<'_>) -> bool) -> Json {
        static UNFILTERED: OnceLock<Json> = OnceLock::new();
        let unfiltered =
            UNFILTERED.get_or_init(|| run(INTROSPECTION_QUERY).data.into_json().unwrap());
        let mut response =
            async_graphql::Response::new(Value::from_json(unfiltered.clone()).unwrap());
        filter(INTROSPECTION_QUERY, &mut response, allowed);
        let (data, codes) = answer(response);
        assert!(codes.is_empty(), "{codes:?}");
        data["__schema"].clone()
    }

    fn named_type(mut ty: &Json) -> &str {
        while ty["name"].is_null() && !ty["ofType"].is_null() {
            ty = &ty["ofType"];
        }
        ty["name"].as_str().unwrap_or_default()
    }

    fn names(list: &Json) -> Vec<&str> {
        list.as_array()
            .map(|items| items.iter().filter_map(|i| i["name"].as_str()).collect())
            .unwrap_or_default()
    }

    fn find<'j>(schema: &'j Json, name: &str) -> Option<&'j Json> {
        schema["types"]
            .as_array()?
            .iter()
            .find(|t| t["name"] == name)
    }

    /// Written against the introspection JSON alone, independently of `View`: the result is
    /// a schema a client can use, and shows nothing `allowed` hides.
    fn check(schema: &Json, allowed: &dyn Fn(Member<'_>) -> bool) -> Result<(), String> {
        let types: BTreeMap<&str, &Json> = schema["types"]
            .as_array()
            .ok_or("no types")?
            .iter()
            .map(|t| (t["name"].as_str().unwrap_or_default(), t))
            .collect();
        let exists = |name: &str, context: &str| {
            if types.contains_key(name) {
                Ok(())
            } else {
                Err(format!("{context} refers to {name}, which is not listed"))
            }
        };
        exists(
            schema["queryType"]["name"].as_str().unwrap_or_default(),
            "queryType",
        )?;
        if let Some(mutation) = schema["mutationType"]["name"].as_str() {
            exists(mutation, "mutationType")?;
        }
        let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, ty) in &types {
            let user = !name.starts_with("__");
            let kind = ty["kind"].as_str().unwrap_or_default();
            let nonempty = |key: &str| ty[key].as_array().is_some_and(|l| !l.is_empty());
            // The query root is kept even when a rule hides all of it: a schema needs one.
            let root = schema["queryType"]["name"] == *name;
            let ok = match kind {
                "OBJECT" | "INTERFACE" => root || nonempty("fields"),
                "INPUT_OBJECT" => nonempty("inputFields"),
                "ENUM" => nonempty("enumValues"),
                "UNION" => nonempty("possibleTypes"),
                _ => true,
            };
            if !ok {
                return Err(format!("{name} ({kind}) is empty"));
            }
            let out = edges.entry(name).or_default();
            for field in ty["fields"].as_array().into_iter().flatten() {
                let f = field["name"].as_str().unwrap_or_default();
                if user && !allowed(Member::Field { ty: name, name: f }) {
                    return Err(format!("{name}.{f} is shown"));
                }
                let target = named_type(&field["type"]);
                exists(target, &format!("{name}.{f}"))?;
                out.push(target);
                for arg in field["args"].as_array().into_iter().flatten() {
                    let target = named_type(&arg["type"]);
                    exists(target, &format!("{name}.{f}({})", arg["name"]))?;
                    out.push(target);
                }
            }
            for input in ty["inputFields"].as_array().into_iter().flatten() {
                let f = input["name"].as_str().unwrap_or_default();
                if user && !allowed(Member::InputField { ty: name, name: f }) {
                    return Err(format!("input {name}.{f} is shown"));
                }
                let target = named_type(&input["type"]);
                exists(target, &format!("{name}.{f}"))?;
                out.push(target);
            }
            for value in names(&ty["enumValues"]) {
                if user
                    && !allowed(Member::EnumValue {
                        ty: name,
                        name: value,
                    })
                {
                    return Err(format!("{name}.{value} is shown"));
                }
            }
            for interface in names(&ty["interfaces"]) {
                exists(interface, &format!("{name} implements"))?;
                out.push(interface);
                let wanted = names(&types[interface]["fields"]);
                let own = names(&ty["fields"]);
                if let Some(missing) = wanted.iter().find(|f| !own.contains(f)) {
                    return Err(format!("{name} implements {interface} without {missing}"));
                }
                if !names(&types[interface]["possibleTypes"]).contains(name) {
                    return Err(format!(
                        "{interface} does not list its implementation {name}"
                    ));
                }
            }
            for possible in names(&ty["possibleTypes"]) {
                exists(possible, &format!("{name} possible type"))?;
                out.push(possible);
                if kind == "INTERFACE" && !names(&types[possible]["interfaces"]).contains(name) {
                    return Err(format!(
                        "{possible} is listed under {name} without implementing it"
                    ));
                }
            }
        }
        // Nothing is listed that a client could not reach from a root.
        let mut stack: Vec<&str> = vec![schema["queryType"]["name"].as_str().unwrap_or_default()];
        stack.extend(schema["mutationType"]["name"].as_str());
        stack.extend(BUILT_IN_SCALARS);
        stack.extend(types.keys().filter(|n| n.starts_with("__")));
        let mut seen = BTreeSet::new();
        while let Some(name) = stack.pop() {
            if seen.insert(name) {
                stack.extend(edges.get(name).into_iter().flatten());
            }
        }
        match types.keys().find(|n| !seen.contains(*n)) {
            Some(orphan) => Err(format!("{orphan} is listed but unreachable")),
            None => Ok(()),
        }
    }

    #[test]
    fn everything_allowed_changes_nothing() {
        let unfiltered = run(INTROSPECTION_QUERY).data.into_json().unwrap();
        let everything = full_schema(|_| true);
        assert_eq!(everything, unfiltered["__schema"]);
        check(&everything, &|_| true).unwrap();
    }

    #[test]
    fn a_role_without_financial_data_sees_no_trace_of_it() {
        let allowed = role("ATP");
        let schema = full_schema(&allowed);
        check(&schema, &allowed).unwrap();
        assert!(find(&schema, "Money").is_none());
        let query = names(&find(&schema, "Query").unwrap()["fields"]);
        assert_eq!(query, ["trades", "node", "search", "me"]);
        let trade = names(&find(&schema, "Trade").unwrap()["fields"]);
        assert_eq!(trade, ["id", "hsCode", "importer", "batch"]);
        let filter = names(&find(&schema, "TradeFilter").unwrap()["inputFields"]);
        assert_eq!(filter, ["hsCode", "importer"]);
        let node = names(&find(&schema, "Node").unwrap()["possibleTypes"]);
        assert_eq!(node, ["Trade", "Batch"]);
        assert_eq!(names(&find(&schema, "Batch").unwrap()["fields"]), ["id"]);
        // `wipe` was the only mutation: no mutation root at all.
        assert_eq!(schema["mutationType"], Json::Null);
        assert!(find(&schema, "Mutation").is_none());
        // `Secret.key` is required and hidden: the input type and `unlock`, which needs it, go.
        assert!(find(&schema, "Secret").is_none());
    }

    #[test]
    fn without_pii_sort_keys_and_filters_on_it_go_too() {
        let allowed = role("AT");
        let schema = full_schema(&allowed);
        check(&schema, &allowed).unwrap();
        let sort = names(&find(&schema, "SortKey").unwrap()["enumValues"]);
        assert_eq!(sort, ["HS_CODE"]);
        let filter = names(&find(&schema, "TradeFilter").unwrap()["inputFields"]);
        assert_eq!(filter, ["hsCode"]);
    }

    #[test]
    fn an_administrator_sees_accounts_not_records() {
        let allowed = role("AXU");
        let schema = full_schema(&allowed);
        check(&schema, &allowed).unwrap();
        let listed = names(&schema["types"]);
        for gone in [
            "Trade",
            "Money",
            "Alert",
            "Hit",
            "TradeFilter",
            "SortKey",
            "Secret",
        ] {
            assert!(!listed.contains(&gone), "{gone} in {listed:?}");
        }
        let query = names(&find(&schema, "Query").unwrap()["fields"]);
        assert_eq!(query, ["node", "me"]);
        assert_eq!(
            names(&find(&schema, "Node").unwrap()["possibleTypes"]),
            ["Batch"]
        );
        assert_eq!(
            names(&find(&schema, "Batch").unwrap()["fields"]),
            ["id", "loadedBy"]
        );
        assert_eq!(schema["mutationType"]["name"], "Mutation");
    }

    #[test]
    fn a_principal_with_nothing_to_query_still_gets_a_query_root() {
        let allowed = |m: Member<'_>| !matches!(m, Member::Field { ty: "Query", .. });
        let schema = full_schema(allowed);
        check(&schema, &allowed).unwrap();
        assert_eq!(schema["queryType"]["name"], "Query");
        assert_eq!(find(&schema, "Query").unwrap()["fields"], json!([]));
        for gone in [
            "Trade",
            "Money",
            "Batch",
            "Node",
            "Hit",
            "TradeFilter",
            "Secret",
        ] {
            assert!(find(&schema, gone).is_none(), "{gone}");
        }
        assert_eq!(schema["mutationType"]["name"], "Mutation");
    }

    #[test]
    fn a_union_keeps_only_members_with_something_to_show() {
        // Alert has nothing left to show: it leaves the union, which keeps Trade.
        let allowed = |m: Member<'_>| !matches!(m, Member::Field { ty: "Alert", .. });
        let schema = full_schema(allowed);
        check(&schema, &allowed).unwrap();
        assert_eq!(
            names(&find(&schema, "Hit").unwrap()["possibleTypes"]),
            ["Trade"]
        );
        assert!(find(&schema, "Alert").is_none());
    }

    #[test]
    fn type_lookups_of_hidden_types_are_null_under_any_alias() {
        let query = r#"{
            __type(name: "Money") { name }
            m: __type(name: "Money") { name fields { name } }
            t: __type(name: "Trade") { n: name f: fields { x: name a: args { name } } i: interfaces { name } }
            n: __type(name: "Node") { name possibleTypes { name } }
            f: __type(name: "TradeFilter") { name inputFields { name type { name kind } } }
            w: __type(name: "NoSuchType") { name }
            me
        }"#;
        let (data, codes) = filtered(query, role("AT"));
        assert!(codes.is_empty(), "{codes:?}");
        assert_eq!(
            data,
            json!({
                "__type": null,
                "m": null,
                "t": { "n": "Trade", "f": [
                    { "x": "id", "a": [] },
                    { "x": "hsCode", "a": [] },
                    { "x": "batch", "a": [] },
                ], "i": [{ "name": "Node" }] },
                "n": { "name": "Node", "possibleTypes": [{ "name": "Trade" }, { "name": "Batch" }] },
                "f": { "name": "TradeFilter", "inputFields": [
                    { "name": "hsCode", "type": { "name": "String", "kind": "SCALAR" } },
                ] },
                "w": null,
                "me": "",
            })
        );
    }

    #[test]
    fn fragments_and_nested_type_references_are_filtered_too() {
        let query = r#"
            query Q { ...Root }
            fragment Root on Query { __type(name: "Query") { ...T } }
            fragment T on __Type {
                name
                fields { ... on __Field { name type { ...Ref } } }
            }
            fragment Ref on __Type {
                name ofType { name ofType { name ofType { name fields { name } } } }
            }
        "#;
        let (data, codes) = filtered(query, role("AT"));
        assert!(codes.is_empty(), "{codes:?}");
        let fields = &data["__type"]["fields"];
        assert_eq!(names(fields), ["trades", "node", "search", "me"]);
        // trades: [Trade!]! — the Trade reached through the wrappers lost `importer`, `money`.
        let trade = &fields[0]["type"]["ofType"]["ofType"]["ofType"];
        assert_eq!(trade["name"], "Trade", "{data}");
        assert_eq!(names(&trade["fields"]), ["id", "hsCode", "batch"]);
    }

    #[test]
    fn results_whose_identity_is_not_selected_are_withheld() {
        for query in [
            r#"{ __type(name: "Trade") { fields { description } } }"#,
            r#"{ __type(name: "Trade") { kind } }"#,
            r#"{ __type(name: "Trade") { name a: fields { name } b: fields { description } } }"#,
            r#"{ __type(name: "Query") { name fields { name args { description } } } }"#,
            r#"{ __type(name: "SortKey") { name enumValues { description } } }"#,
            r#"{ __type(name: "Node") { name possibleTypes { kind } } }"#,
            r#"{ me __type(name: "Trade") { name @skip(if: true) fields { name } } }"#,
        ] {
            let (data, codes) = filtered(query, role("AT"));
            assert_eq!(codes, ["BAD_USER_INPUT"], "{query}");
            assert_eq!(data["__type"], Json::Null, "{query}: {data}");
        }
        // `__schema` is non-null: withholding it nulls `data`, as null propagation would.
        let (data, codes) = filtered("{ me __schema { types { kind } } }", role("AT"));
        assert_eq!(codes, ["BAD_USER_INPUT"]);
        assert_eq!(data, Json::Null);
    }

    #[test]
    fn keys_hidden_behind_deeply_nested_fragments_are_refused_not_guessed() {
        // async-graphql's own recursion limit refuses such a document before execution; the
        // filter must not depend on that, so it is given a hand-made result here.
        let depth = MAX_FRAGMENT_NESTING + 5;
        let mut query = String::from("query Q { ...F0 }\n");
        for i in 0..depth {
            query.push_str(&format!("fragment F{i} on Query {{ ...F{} }}\n", i + 1));
        }
        query.push_str(&format!(
            "fragment F{depth} on Query {{ __type(name: \"Money\") {{ name fields {{ name }} }} }}\n"
        ));
        let data = json!({ "__type": { "name": "Money", "fields": [{ "name": "amount" }] } });
        let mut response = async_graphql::Response::new(Value::from_json(data).unwrap());
        filter(&query, &mut response, role("AT"));
        let (data, codes) = answer(response);
        assert_eq!(codes, ["BAD_USER_INPUT"]);
        assert_eq!(data, Json::Null);
    }

    #[test]
    fn hand_made_results_of_unexpected_shape_are_refused() {
        let query = r#"{ __type(name: "Trade") { name fields { name } } }"#;
        for data in [
            // `fields` must be a list.
            json!({ "__type": { "name": "Trade", "fields": { "name": "money" } } }),
            // A field without its name.
            json!({ "__type": { "name": "Trade", "fields": [{}] } }),
            // A key the document does not explain.
            json!({ "__type": { "name": "Trade", "extra": [{ "name": "money" }] } }),
        ] {
            let mut response = async_graphql::Response::new(Value::from_json(data).unwrap());
            filter(query, &mut response, role("AT"));
            let (data, codes) = answer(response);
            assert_eq!(codes, ["BAD_USER_INPUT"]);
            assert_eq!(data, json!({ "__type": null }));
        }
        let data = json!({ "__type": { "name": "Trade", "fields": [
            { "name": "id" }, { "name": "money" }, { "name": "importer" },
        ] } });
        let mut response = async_graphql::Response::new(Value::from_json(data).unwrap());
        filter(query, &mut response, role("AT"));
        assert_eq!(
            answer(response),
            (
                json!({ "__type": { "name": "Trade", "fields": [{ "name": "id" }] } }),
                vec![]
            )
        );
    }

    #[test]
    fn only_documents_asking_for_introspection_are_planned() {
        let plan = |q: &str, op: Option<&str>| {
            let mut request = async_graphql::Request::new(q);
            if let Some(op) = op {
                request = request.operation_name(op);
            }
            Plan::of(&request).is_some()
        };
        assert!(plan("{ __schema { types { name } } }", None));
        assert!(plan("{ x: __type(name: \"A\") { name } }", None));
        assert!(plan(
            "query A { me } query B { __schema { types { name } } }",
            Some("B")
        ));
        // Another operation's introspection is enough to plan (and harmless: `A`'s result
        // has none to filter).
        assert!(plan(
            "query A { me } query B { __schema { types { name } } }",
            Some("A")
        ));
        let (data, codes) = filtered_op(
            "query A { me } query B { __schema { types { name } } }",
            "A",
        );
        assert_eq!((data, codes), (json!({ "me": "" }), vec![]));
        assert!(!plan("{ me __typename }", None));
        assert!(!plan(
            "{ search(text: \"__schema __type\") { __typename } }",
            None
        ));
        assert!(!plan("{ __schema {", None));
    }

    /// Every member of the test schema, for random rules.
    fn members() -> Vec<(String, String, u8)> {
        let view = full_view();
        let mut out = Vec::new();
        for (ty, def) in &view.types {
            out.extend(def.fields.keys().map(|f| (ty.clone(), f.clone(), 0)));
            out.extend(def.input_fields.keys().map(|f| (ty.clone(), f.clone(), 1)));
            out.extend(def.values.iter().map(|v| (ty.clone(), v.clone(), 2)));
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever the rule hides, the result is a valid schema showing nothing hidden, and
        /// `__type` answers exactly for the types `__schema` lists.
        #[test]
        fn any_rule_leaves_a_valid_schema(hidden in proptest::collection::vec(any::<bool>(), members().len())) {
            let members = members();
            let allowed = |m: Member<'_>| {
                let (ty, name, kind) = match m {
                    Member::Field { ty, name } => (ty, name, 0),
                    Member::InputField { ty, name } => (ty, name, 1),
                    Member::EnumValue { ty, name } => (ty, name, 2),
                };
                let index = members
                    .iter()
                    .position(|(t, n, k)| t == ty && n == name && *k == kind);
                !index.is_some_and(|i| hidden.get(i).copied().unwrap_or(false))
            };
            let schema = full_schema(allowed);
            prop_assert_eq!(check(&schema, &allowed), Ok(()));

            let listed = names(&schema["types"]);
            let all: Vec<String> = full_view().types.keys().cloned().collect();
            let query: String = all
                .iter()
                .enumerate()
                .map(|(i, name)| format!("t{i}: __type(name: \"{name}\") {{ name }}\n"))
                .collect();
            let (data, codes) = filtered(&format!("{{ {query} }}"), allowed);
            prop_assert!(codes.is_empty());
            for (i, name) in all.iter().enumerate() {
                let shown = !data[format!("t{i}")].is_null();
                prop_assert_eq!(shown, listed.contains(&name.as_str()), "{}", name);
            }
        }
    }

    #[test]
    fn dartts_roles_see_their_own_schema() {
        use crate::config::Instance;
        const ROLES: &[&str] = &[
            "HSI_AGENT",
            "HSI_ANALYST",
            "CBP_OFFICER",
            "CBP_IMPORT_SPECIALIST",
            "FOREIGN_PARTNER",
            "ADMIN",
        ];
        let sdl = crate::graphql::sdl();
        let policy = Policy::load(None, &sdl, ROLES)
            .unwrap()
            .for_instance(Instance::Domestic);
        let full = View::parse(&sdl).unwrap();
        let view = |role: &str, nation: Option<&str>| {
            let perms = policy.permissions(role, nation);
            full.restrict(rule(&policy, &perms))
        };
        let cbp = view("CBP_OFFICER", None);
        assert!(!cbp.has_type("FinancialTransaction"));
        assert!(!cbp.has_type("FinancialTransactionConnection"));
        assert!(!cbp.has_field("Query", "financialTransactions"));
        assert!(!cbp.has_field("TradeRecord", "linkedFinancialTransactions"));
        assert!(!cbp.has_input_field("TradeRecordFilter", "linkedFinancialActivity"));
        assert!(cbp.has_input_field("TradeRecordFilter", "importerNameContains"));
        assert!(cbp.has_field("TradeRecord", "hsCode"));
        let hsi = view("HSI_ANALYST", None);
        assert!(hsi.has_field("Query", "financialTransactions"));
        assert!(hsi.has_field("TradeRecord", "linkedFinancialTransactions"));
        assert!(!hsi.has_type("Account"));
        assert!(!hsi.has_field("Batch", "loadedBy"));
        let partner = view("FOREIGN_PARTNER", Some("KR"));
        for gone in [
            "SubjectRecord",
            "SdnEntry",
            "SdnAlias",
            "FinancialTransaction",
        ] {
            assert!(!partner.has_type(gone), "{gone}");
        }
        let admin = view("ADMIN", None);
        assert!(admin.has_field("Query", "users"));
        assert!(admin.has_field("Query", "auditEvents"));
        assert!(!admin.has_field("Query", "tradeRecords"));
        assert!(!admin.has_type("TradeRecord"));
        // No principal holds PRE_AUTH: signing in is not part of anyone's schema.
        for role in ROLES {
            let seen = view(role, Some("KR"));
            assert!(!seen.has_field("Mutation", "login"), "{role}");
            assert!(!seen.has_type("LoginResult"), "{role}");
        }
    }

    #[test]
    fn a_partial_view_of_records_hides_the_filters_that_read_its_hidden_fields() {
        use crate::config::Instance;
        // No shipped role reads some but not all of a financial or subject record, so this
        // policy makes one: HSI_AGENT loses TRADE_PII, and these fields become TRADE_PII.
        let roles = include_str!("../../policies/roles.toml").replace(
            "description = \"HSI special agent\"\nallow = [\"TRADE\", \"TRADE_PII\", ",
            "description = \"HSI special agent\"\nallow = [\"TRADE\", ",
        );
        let fields = include_str!("../../policies/fields.toml")
            .replace(
                "[FinancialTransaction]\n\"*\" = \"FINANCIAL\"\n",
                "[FinancialTransaction]\n\"*\" = \"FINANCIAL\"\nsubjectTin = \"TRADE_PII\"\n",
            )
            .replace(
                "[SubjectRecord]\n\"*\" = \"LAW_ENFORCEMENT\"\n",
                "[SubjectRecord]\n\"*\" = \"LAW_ENFORCEMENT\"\nbusinessName = \"TRADE_PII\"\n",
            );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("roles.toml"), roles).unwrap();
        std::fs::write(dir.path().join("fields.toml"), fields).unwrap();
        let sdl = crate::graphql::sdl();
        let policy = Policy::load(Some(dir.path()), &sdl, crate::accounts::ROLES)
            .unwrap()
            .for_instance(Instance::Domestic);
        let perms = policy.permissions("HSI_AGENT", None);
        let view = View::parse(&sdl).unwrap().restrict(rule(&policy, &perms));
        assert!(!view.has_field("FinancialTransaction", "subjectTin"));
        assert!(!view.has_input_field("FinancialTransactionFilter", "subjectTin"));
        assert!(view.has_input_field("FinancialTransactionFilter", "subjectNameContains"));
        assert!(view.has_input_field("FinancialTransactionFilter", "reportType"));
        // `nameContains` reads both names; one of them hidden is enough to hide it.
        assert!(view.has_field("SubjectRecord", "name"));
        assert!(!view.has_input_field("SubjectRecordFilter", "nameContains"));
        assert!(view.has_input_field("SubjectRecordFilter", "recordId"));
        // The trade–financial link compares the (now hidden) importer id and subject TIN.
        assert!(!view.has_field("TradeRecord", "linkedFinancialTransactions"));
        assert!(!view.has_input_field("TradeRecordFilter", "linkedFinancialActivity"));
        assert!(view.has_field("Query", "financialTransactions"));
    }

    /// A connection whose fixed order compares a field the role cannot read is not offered.
    #[test]
    fn a_connection_ordered_by_a_hidden_field_is_not_offered() {
        use crate::config::Instance;
        let fields = include_str!("../../policies/fields.toml").replace(
            "[FinancialTransaction]\n\"*\" = \"FINANCIAL\"\n",
            "[FinancialTransaction]\n\"*\" = \"FINANCIAL\"\ntransactionDate = \"ADMIN\"\n",
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("roles.toml"),
            include_str!("../../policies/roles.toml"),
        )
        .unwrap();
        std::fs::write(dir.path().join("fields.toml"), fields).unwrap();
        let sdl = crate::graphql::sdl();
        let policy = Policy::load(Some(dir.path()), &sdl, crate::accounts::ROLES)
            .unwrap()
            .for_instance(Instance::Domestic);
        let perms = policy.permissions("HSI_ANALYST", None);
        let view = View::parse(&sdl).unwrap().restrict(rule(&policy, &perms));
        assert!(!view.has_field("Query", "financialTransactions"));
        assert!(view.has_field("Query", "subjectRecords"));
    }

    /// READS' entry for the filter type `F` agrees with `F::fields_read`, member by member:
    /// what introspection hides is exactly what the resolvers and exports refuse.
    fn reads_match_fields_read<F: crate::graphql::filters::RecordFilter>(view: &View) {
        let ty = F::type_name();
        let entries: Vec<&Reads> = READS.iter().filter(|reads| reads.ty == ty).collect();
        assert_eq!(entries.len(), 1, "READS must list {ty} once");
        assert_eq!(entries[0].record, F::RECORD, "{ty}");
        let table: BTreeMap<&str, BTreeSet<&str>> = entries[0]
            .members
            .iter()
            .map(|(m, fields)| (*m, fields.iter().copied().collect()))
            .collect();
        let sample = |ty: &str| match ty {
            "Date" => Value::from("2024-01-01"),
            "Float" => Value::from(1.0),
            "Int" => Value::from(1),
            "Boolean" => Value::from(true),
            "String" | "ID" => Value::from("1"),
            other => {
                let first = view.types[other].values.first().cloned().unwrap();
                Value::Enum(Name::new(first))
            }
        };
        let inputs = &view.types[ty.as_ref()].input_fields;
        assert_eq!(
            inputs.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            table.keys().copied().collect::<BTreeSet<_>>(),
            "READS must list every {ty} field"
        );
        for (name, input) in inputs {
            let mut object = async_graphql::indexmap::IndexMap::new();
            object.insert(Name::new(name), sample(&input.ty));
            let filter = F::parse(Some(Value::Object(object)))
                .map_err(|e| e.into_server_error(Default::default()).message)
                .unwrap();
            let read: BTreeSet<&str> = filter.fields_read().into_iter().collect();
            assert_eq!(read, table[name.as_str()], "{ty}.{name}");
        }
        assert!(F::default().fields_read().is_empty(), "{ty}: empty filter");
    }

    #[test]
    fn reads_match_what_each_filter_checks() {
        use crate::graphql::financial::FinancialTransactionFilter;
        use crate::graphql::subjects::SubjectRecordFilter;
        use crate::graphql::trade::TradeRecordFilter;
        let view = View::parse(&crate::graphql::sdl()).unwrap();
        reads_match_fields_read::<TradeRecordFilter>(&view);
        reads_match_fields_read::<FinancialTransactionFilter>(&view);
        reads_match_fields_read::<SubjectRecordFilter>(&view);
        reads_match_fields_read::<crate::graphql::mirror::MirrorFilter>(&view);
        reads_match_fields_read::<crate::graphql::trade_finance::TradeFinanceFilter>(&view);
        // Every filter input READS lists is one of those checked above (sort keys are checked
        // by `reads_name_real_members_and_fields`).
        let filters: BTreeSet<&str> = READS
            .iter()
            .filter(|reads| view.types[reads.ty].kind == Kind::InputObject)
            .map(|reads| reads.ty)
            .collect();
        assert_eq!(
            filters,
            BTreeSet::from([
                "TradeRecordFilter",
                "FinancialTransactionFilter",
                "SubjectRecordFilter",
                "MirrorFilter",
                "TradeFinanceFilter"
            ])
        );
    }

    #[test]
    fn reads_name_real_members_and_fields() {
        let view = View::parse(&crate::graphql::sdl()).unwrap();
        for Reads {
            ty,
            record,
            members,
        } in READS
        {
            let def = &view.types[*ty];
            for (member, fields) in *members {
                assert!(
                    def.input_fields.contains_key(*member) || def.values.contains(*member),
                    "{ty}.{member}"
                );
                for field in *fields {
                    assert!(view.has_field(record, field), "{record}.{field}");
                }
            }
        }
        // Sort keys are named after the field they sort on; every one is listed.
        let sort = &view.types["TradeRecordSortField"].values;
        let listed: BTreeMap<&str, &[&str]> = READS
            .iter()
            .filter(|reads| reads.ty == "TradeRecordSortField")
            .flat_map(|reads| reads.members.iter().copied())
            .collect();
        for value in sort {
            let camel: String = value
                .split('_')
                .enumerate()
                .map(|(i, word)| {
                    let lower = word.to_lowercase();
                    if i == 0 {
                        return lower;
                    }
                    let mut chars = lower.chars();
                    chars
                        .next()
                        .map(|c| c.to_uppercase().chain(chars).collect())
                        .unwrap_or_default()
                })
                .collect();
            assert_eq!(
                listed.get(value.as_str()).copied(),
                Some(&[camel.as_str()][..]),
                "{value}"
            );
        }
    }
}

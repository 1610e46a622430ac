//! The [`Plan`] half: the request's document re-read after execution to prune `__schema` and
//! `__type` results to the principal's [`View`].

use super::*;

/// Why an introspection result was withheld.
type Refusal = String;

/// The fields of a selection by response key, fragments expanded, in document order.
type Keys<'d> = Vec<(&'d str, Vec<&'d Field>)>;

/// Fragments spreading fragments deeper than this are not expanded; keys they would explain
/// then refuse the result (validation bounds real documents far below it).
pub(super) const MAX_FRAGMENT_NESTING: usize = 32;

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

//! Shapes of REST values, read off the GraphQL schema: what a parameter accepts and what a
//! response holds. They drive the translation between the spec's lowercase value sets and GraphQL
//! enums, and the OpenAPI document, so neither can drift from the schema.

use async_graphql::parser::types::{BaseType, Field, Selection, SelectionSet, Type, TypeKind, TypeSystemDefinition};
use async_graphql::Value as ConstValue;
use std::collections::HashMap;

/// A value as REST clients see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub kind: ShapeKind,
    pub nullable: bool,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ShapeKind {
    /// A GraphQL scalar: `Int`, `Float`, `String`, `ID`, `Boolean` or `DateTime`.
    Scalar(String),
    /// A GraphQL enum; REST speaks its values in lowercase.
    Enum(Vec<String>),
    List(Box<Shape>),
    /// Members in selection order, named by their response keys (aliases).
    Object(Vec<(String, Shape)>),
}

impl ShapeKind {
    /// The values REST clients send and receive for an enum, in lowercase.
    pub fn rest_values(values: &[String]) -> Vec<String> {
        values.iter().map(|value| value.to_lowercase()).collect()
    }
}

impl Shape {
    /// Rewrites a GraphQL response value into its REST form: enum values in lowercase. It works
    /// on the response as GraphQL gives it, so the REST answer is serialized from it directly.
    pub fn to_rest(&self, value: &mut ConstValue) {
        match (&self.kind, value) {
            (ShapeKind::Enum(_), value @ ConstValue::Enum(_)) => {
                if let ConstValue::Enum(name) = value {
                    *value = ConstValue::String(name.to_lowercase());
                }
            }
            (ShapeKind::Enum(_), ConstValue::String(text)) => *text = text.to_lowercase(),
            (ShapeKind::List(item), ConstValue::List(items)) => items.iter_mut().for_each(|value| item.to_rest(value)),
            (ShapeKind::Object(members), ConstValue::Object(object)) => {
                for (key, shape) in members {
                    if let Some(value) = object.get_mut(key.as_str()) {
                        shape.to_rest(value);
                    }
                }
            }
            _ => {}
        }
    }
}

/// What the shapes are read from: the object and enum types of the schema's SDL.
pub struct SchemaIndex {
    fields: HashMap<String, HashMap<String, (Type, Option<String>)>>,
    enums: HashMap<String, Vec<String>>,
    pub query_root: String,
    pub mutation_root: String,
}

impl SchemaIndex {
    pub fn from_sdl(sdl: &str) -> Result<SchemaIndex, String> {
        let document =
            async_graphql::parser::parse_schema(sdl).map_err(|e| format!("the schema does not parse: {e}"))?;
        let mut index = SchemaIndex {
            fields: HashMap::new(),
            enums: HashMap::new(),
            query_root: "Query".to_owned(),
            mutation_root: "Mutation".to_owned(),
        };
        for definition in document.definitions {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    if let Some(query) = &schema.node.query {
                        index.query_root = query.node.to_string();
                    }
                    if let Some(mutation) = &schema.node.mutation {
                        index.mutation_root = mutation.node.to_string();
                    }
                }
                TypeSystemDefinition::Type(definition) => {
                    let name = definition.node.name.node.to_string();
                    match definition.node.kind {
                        TypeKind::Object(object) => {
                            let fields = object
                                .fields
                                .into_iter()
                                .map(|field| {
                                    let field = field.node;
                                    let description = field.description.map(|d| d.node);
                                    (field.name.node.to_string(), (field.ty.node, description))
                                })
                                .collect();
                            index.fields.insert(name, fields);
                        }
                        TypeKind::Enum(enumeration) => {
                            let values = enumeration.values.iter().map(|v| v.node.value.node.to_string()).collect();
                            index.enums.insert(name, values);
                        }
                        _ => {}
                    }
                }
                TypeSystemDefinition::Directive(_) => {}
            }
        }
        Ok(index)
    }

    /// The shape of an input of the given type (a variable): a scalar, an enum, or a list of them.
    pub fn input_shape(&self, ty: &Type) -> Result<Shape, String> {
        let kind = match &ty.base {
            BaseType::Named(name) => self.leaf(name)?,
            BaseType::List(item) => ShapeKind::List(Box::new(self.input_shape(item)?)),
        };
        Ok(Shape { kind, nullable: ty.nullable, description: None })
    }

    /// The shape of what a selection on an object type answers.
    pub fn selection_shape(&self, object: &str, selection: &SelectionSet) -> Result<Shape, String> {
        let fields = self.fields.get(object).ok_or_else(|| format!("{object} is not an object type"))?;
        let mut members = Vec::new();
        for item in &selection.items {
            let Selection::Field(field) = &item.node else {
                return Err("REST documents use plain fields, not fragments".to_owned());
            };
            let (ty, description) = fields
                .get(field.node.name.node.as_str())
                .ok_or_else(|| format!("{object} has no field {}", field.node.name.node))?;
            let mut shape = self.output_shape(ty, &field.node)?;
            shape.description = description.clone();
            members.push((field.node.response_key().node.to_string(), shape));
        }
        Ok(Shape { kind: ShapeKind::Object(members), nullable: false, description: None })
    }

    fn output_shape(&self, ty: &Type, field: &Field) -> Result<Shape, String> {
        let kind = match &ty.base {
            BaseType::List(item) => ShapeKind::List(Box::new(self.output_shape(item, field)?)),
            BaseType::Named(name) if self.fields.contains_key(name.as_str()) => {
                self.selection_shape(name, &field.selection_set.node)?.kind
            }
            BaseType::Named(name) => self.leaf(name)?,
        };
        Ok(Shape { kind, nullable: ty.nullable, description: None })
    }

    fn leaf(&self, name: &str) -> Result<ShapeKind, String> {
        match (self.enums.get(name), name) {
            (Some(values), _) => Ok(ShapeKind::Enum(values.clone())),
            (None, "Int" | "Float" | "String" | "ID" | "Boolean" | "DateTime") => {
                Ok(ShapeKind::Scalar(name.to_owned()))
            }
            (None, other) => Err(format!("the REST layer does not know the type {other}")),
        }
    }
}
